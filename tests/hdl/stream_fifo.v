// A small synchronous ready/valid FIFO (hand-written test fixture for the sim/ drivers and runners;
// not part of the core). DEPTH entries, WIDTH-bit data plus a `last` flag. in_ready = not full;
// out_valid = not empty; one word in and one out per cycle.
module stream_fifo #(
    parameter WIDTH = 8,
    parameter DEPTH = 4
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             in_valid,
    output wire             in_ready,
    input  wire [WIDTH-1:0] in_data,
    input  wire             in_last,
    output wire             out_valid,
    input  wire             out_ready,
    output wire [WIDTH-1:0] out_data,
    output wire             out_last
);
    localparam AW = (DEPTH <= 2) ? 1 : $clog2(DEPTH);
    reg [WIDTH:0] mem [0:DEPTH-1];
    reg [AW-1:0] rd, wr;
    reg [AW:0] count;
    wire push = in_valid & in_ready;
    wire pop = out_valid & out_ready;
    assign in_ready = ({{(31 - AW){1'b0}}, count} != DEPTH);
    assign out_valid = (count != 0);
    assign out_data = mem[rd][WIDTH-1:0];
    assign out_last = mem[rd][WIDTH];
    always @(posedge clk) begin
        if (rst) begin
            rd <= {AW{1'b0}};
            wr <= {AW{1'b0}};
            count <= {(AW + 1){1'b0}};
        end else begin
            if (push) begin
                mem[wr] <= {in_last, in_data};
                wr <= ({{(32 - AW){1'b0}}, wr} == DEPTH - 1) ? {AW{1'b0}} : wr + 1'b1;
            end
            if (pop)
                rd <= ({{(32 - AW){1'b0}}, rd} == DEPTH - 1) ? {AW{1'b0}} : rd + 1'b1;
            count <= count + {{AW{1'b0}}, push} - {{AW{1'b0}}, pop};
        end
    end
endmodule
