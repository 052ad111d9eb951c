// Behavioural model of the Lattice ECP5 DP16KD block RAM, for skipcore's tests only.
//
// It covers what skipcore uses and what Yosys' memory_libmap emits for ROMs and for RAMs of one
// write and one read port: port widths 1, 2, 4, 9 and 18 (DATA_WIDTH_A/B; the word address in
// ADx[13:0], [13:1], [13:2], [13:3] and [13:4]; with 18 bits ADx[1:0] are the byte enables of a
// write), both ports on one clock. A port works at a clock edge only while its clock enable CEx
// is high (and its chip selects match CSDECODE): it writes DIx at its address with WEx, else it
// reads the word into its read latch, which is DOx with REGMODE "NOREG"; with "OUTREG" DOx is
// the output register, which takes the latch at each edge while the output clock enable OCEx is
// high. During a write the writing port's latch follows WRITEMODE: "NORMAL" holds, "WRITETHROUGH"
// takes the new word, "READBEFOREWRITE" the old one. A read of bits the other port writes at the
// same edge gives x (the ports collide; the data sheet leaves the word undefined), and so does a
// write of both ports to the same bits. Resets are synchronous (RESETMODE "SYNC"; "ASYNC" with a
// reset stops the simulation) and clear the latch and the output register.
//
// The array is 1024 rows of 18 bits; an 18-bit word is a row, a 9-bit word half a row (low half
// at the even address); 1-, 2- and 4-bit words pack into the 16 bits of a row other than 8 and
// 17 (a choice of this model: skipcore's blocks use one width for both ports). INITVAL_00..3F
// fill the rows: 16 rows of 18 bits in 20-bit fields per 320-bit value (Yosys
// share/lattice/brams_map_16kd.v). Other widths or clock muxes stop the simulation with a
// message. tests/test_boards_ecp5_memory.py checks the model against Yosys' own mapping.
`timescale 1ns/1ps
module DP16KD(
	input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
	input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
	input CEA, OCEA, CLKA, WEA, RSTA,
	input CSA2, CSA1, CSA0,
	output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
	input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
	input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
	input CEB, OCEB, CLKB, WEB, RSTB,
	input CSB2, CSB1, CSB0,
	output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
	parameter DATA_WIDTH_A = 18;
	parameter DATA_WIDTH_B = 18;
	parameter REGMODE_A = "NOREG";
	parameter REGMODE_B = "NOREG";
	parameter RESETMODE = "SYNC";
	parameter ASYNC_RESET_RELEASE = "SYNC";
	parameter CSDECODE_A = "0b000";
	parameter CSDECODE_B = "0b000";
	parameter WRITEMODE_A = "NORMAL";
	parameter WRITEMODE_B = "NORMAL";
	parameter CLKAMUX = "CLKA";
	parameter CLKBMUX = "CLKB";
	parameter GSR = "ENABLED";
	parameter INIT_DATA = "STATIC";
	parameter INITVAL_00 = 320'h0;
	parameter INITVAL_01 = 320'h0;
	parameter INITVAL_02 = 320'h0;
	parameter INITVAL_03 = 320'h0;
	parameter INITVAL_04 = 320'h0;
	parameter INITVAL_05 = 320'h0;
	parameter INITVAL_06 = 320'h0;
	parameter INITVAL_07 = 320'h0;
	parameter INITVAL_08 = 320'h0;
	parameter INITVAL_09 = 320'h0;
	parameter INITVAL_0A = 320'h0;
	parameter INITVAL_0B = 320'h0;
	parameter INITVAL_0C = 320'h0;
	parameter INITVAL_0D = 320'h0;
	parameter INITVAL_0E = 320'h0;
	parameter INITVAL_0F = 320'h0;
	parameter INITVAL_10 = 320'h0;
	parameter INITVAL_11 = 320'h0;
	parameter INITVAL_12 = 320'h0;
	parameter INITVAL_13 = 320'h0;
	parameter INITVAL_14 = 320'h0;
	parameter INITVAL_15 = 320'h0;
	parameter INITVAL_16 = 320'h0;
	parameter INITVAL_17 = 320'h0;
	parameter INITVAL_18 = 320'h0;
	parameter INITVAL_19 = 320'h0;
	parameter INITVAL_1A = 320'h0;
	parameter INITVAL_1B = 320'h0;
	parameter INITVAL_1C = 320'h0;
	parameter INITVAL_1D = 320'h0;
	parameter INITVAL_1E = 320'h0;
	parameter INITVAL_1F = 320'h0;
	parameter INITVAL_20 = 320'h0;
	parameter INITVAL_21 = 320'h0;
	parameter INITVAL_22 = 320'h0;
	parameter INITVAL_23 = 320'h0;
	parameter INITVAL_24 = 320'h0;
	parameter INITVAL_25 = 320'h0;
	parameter INITVAL_26 = 320'h0;
	parameter INITVAL_27 = 320'h0;
	parameter INITVAL_28 = 320'h0;
	parameter INITVAL_29 = 320'h0;
	parameter INITVAL_2A = 320'h0;
	parameter INITVAL_2B = 320'h0;
	parameter INITVAL_2C = 320'h0;
	parameter INITVAL_2D = 320'h0;
	parameter INITVAL_2E = 320'h0;
	parameter INITVAL_2F = 320'h0;
	parameter INITVAL_30 = 320'h0;
	parameter INITVAL_31 = 320'h0;
	parameter INITVAL_32 = 320'h0;
	parameter INITVAL_33 = 320'h0;
	parameter INITVAL_34 = 320'h0;
	parameter INITVAL_35 = 320'h0;
	parameter INITVAL_36 = 320'h0;
	parameter INITVAL_37 = 320'h0;
	parameter INITVAL_38 = 320'h0;
	parameter INITVAL_39 = 320'h0;
	parameter INITVAL_3A = 320'h0;
	parameter INITVAL_3B = 320'h0;
	parameter INITVAL_3C = 320'h0;
	parameter INITVAL_3D = 320'h0;
	parameter INITVAL_3E = 320'h0;
	parameter INITVAL_3F = 320'h0;

	// CSDECODE is a string "0bXYZ": its last three characters are the bits
	wire [2:0] csdecode_a = {CSDECODE_A[16], CSDECODE_A[8], CSDECODE_A[0]};
	wire [2:0] csdecode_b = {CSDECODE_B[16], CSDECODE_B[8], CSDECODE_B[0]};

	reg [17:0] mem [0:1023];
	integer i;
	initial begin
		if (!width_ok(DATA_WIDTH_A) || !width_ok(DATA_WIDTH_B) || CLKAMUX != "CLKA" || CLKBMUX != "CLKB") begin
			$display("DP16KD model: only ports of 1, 2, 4, 9 or 18 bits and plain clocks are modelled");
			$finish;
		end
		for (i = 0; i < 16; i = i + 1) mem[0 * 16 + i] = INITVAL_00[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[1 * 16 + i] = INITVAL_01[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[2 * 16 + i] = INITVAL_02[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[3 * 16 + i] = INITVAL_03[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[4 * 16 + i] = INITVAL_04[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[5 * 16 + i] = INITVAL_05[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[6 * 16 + i] = INITVAL_06[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[7 * 16 + i] = INITVAL_07[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[8 * 16 + i] = INITVAL_08[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[9 * 16 + i] = INITVAL_09[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[10 * 16 + i] = INITVAL_0A[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[11 * 16 + i] = INITVAL_0B[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[12 * 16 + i] = INITVAL_0C[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[13 * 16 + i] = INITVAL_0D[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[14 * 16 + i] = INITVAL_0E[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[15 * 16 + i] = INITVAL_0F[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[16 * 16 + i] = INITVAL_10[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[17 * 16 + i] = INITVAL_11[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[18 * 16 + i] = INITVAL_12[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[19 * 16 + i] = INITVAL_13[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[20 * 16 + i] = INITVAL_14[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[21 * 16 + i] = INITVAL_15[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[22 * 16 + i] = INITVAL_16[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[23 * 16 + i] = INITVAL_17[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[24 * 16 + i] = INITVAL_18[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[25 * 16 + i] = INITVAL_19[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[26 * 16 + i] = INITVAL_1A[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[27 * 16 + i] = INITVAL_1B[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[28 * 16 + i] = INITVAL_1C[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[29 * 16 + i] = INITVAL_1D[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[30 * 16 + i] = INITVAL_1E[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[31 * 16 + i] = INITVAL_1F[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[32 * 16 + i] = INITVAL_20[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[33 * 16 + i] = INITVAL_21[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[34 * 16 + i] = INITVAL_22[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[35 * 16 + i] = INITVAL_23[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[36 * 16 + i] = INITVAL_24[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[37 * 16 + i] = INITVAL_25[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[38 * 16 + i] = INITVAL_26[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[39 * 16 + i] = INITVAL_27[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[40 * 16 + i] = INITVAL_28[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[41 * 16 + i] = INITVAL_29[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[42 * 16 + i] = INITVAL_2A[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[43 * 16 + i] = INITVAL_2B[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[44 * 16 + i] = INITVAL_2C[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[45 * 16 + i] = INITVAL_2D[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[46 * 16 + i] = INITVAL_2E[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[47 * 16 + i] = INITVAL_2F[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[48 * 16 + i] = INITVAL_30[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[49 * 16 + i] = INITVAL_31[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[50 * 16 + i] = INITVAL_32[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[51 * 16 + i] = INITVAL_33[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[52 * 16 + i] = INITVAL_34[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[53 * 16 + i] = INITVAL_35[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[54 * 16 + i] = INITVAL_36[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[55 * 16 + i] = INITVAL_37[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[56 * 16 + i] = INITVAL_38[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[57 * 16 + i] = INITVAL_39[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[58 * 16 + i] = INITVAL_3A[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[59 * 16 + i] = INITVAL_3B[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[60 * 16 + i] = INITVAL_3C[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[61 * 16 + i] = INITVAL_3D[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[62 * 16 + i] = INITVAL_3E[i * 20 +: 18];
		for (i = 0; i < 16; i = i + 1) mem[63 * 16 + i] = INITVAL_3F[i * 20 +: 18];
	end

	function width_ok(input integer width);
		width_ok = width == 1 || width == 2 || width == 4 || width == 9 || width == 18;
	endfunction

	// the array bit of bit j of the word at address ad of a port of the given width
	function integer bit_at(input integer width, input [13:0] ad, input integer j);
		integer per_row, index, k;
		begin
			if (width == 18) bit_at = 18 * ad[13:4] + j;
			else if (width == 9) bit_at = 9 * ad[13:3] + j;
			else begin
				per_row = 16 / width;
				index = ad >> (width == 4 ? 2 : width == 2 ? 1 : 0);
				k = width * (index % per_row) + j;
				bit_at = 18 * (index / per_row) + k + (k >= 8 ? 1 : 0);
			end
		end
	endfunction

	wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
	wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
	wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
	wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
	wire [2:0] csa = {CSA2, CSA1, CSA0};
	wire [2:0] csb = {CSB2, CSB1, CSB0};
	wire on_a = CEA && csa == csdecode_a;
	wire on_b = CEB && csb == csdecode_b;
	// a write of 18 bits writes the bytes whose enables ADx[1:0] are on
	function byte_on(input integer width, input [13:0] ad, input integer j);
		byte_on = width != 18 || (j < 9 ? ad[0] : ad[1]);
	endfunction

	reg [17:0] ram_a = 18'h0, reg_a = 18'h0;   // read latch (NOREG output), output register (OUTREG)
	reg [17:0] ram_b = 18'h0, reg_b = 18'h0;
	reg [18431:0] bits;
	reg [18431:0] written_a;                    // the bits port A writes at this edge
	reg [17:0] next_a, next_b;
	integer r, j;
	initial begin
		for (r = 0; r < 1024; r = r + 1) bits[18 * r +: 18] = mem[r];
	end

	always @(posedge CLKA) begin
		if (CLKB !== 1'b1) begin
			$display("DP16KD model: CLKA and CLKB must be one clock");
			$finish;
		end
		if ((RSTA || RSTB) && RESETMODE != "SYNC") begin
			$display("DP16KD model: an asynchronous reset, which this model does not cover");
			$finish;
		end
		next_a = ram_a;
		next_b = ram_b;
		written_a = 0;
		// reads (and the writing port's own latch) see the array before this edge
		for (j = 0; j < DATA_WIDTH_A; j = j + 1) begin
			if (on_a && !WEA) next_a[j] = bits[bit_at(DATA_WIDTH_A, ada, j)];
			if (on_a && WEA && WRITEMODE_A == "READBEFOREWRITE") next_a[j] = bits[bit_at(DATA_WIDTH_A, ada, j)];
			if (on_a && WEA && WRITEMODE_A == "WRITETHROUGH") next_a[j] = dia[j];
		end
		for (j = 0; j < DATA_WIDTH_B; j = j + 1) begin
			if (on_b && !WEB) next_b[j] = bits[bit_at(DATA_WIDTH_B, adb, j)];
			if (on_b && WEB && WRITEMODE_B == "READBEFOREWRITE") next_b[j] = bits[bit_at(DATA_WIDTH_B, adb, j)];
			if (on_b && WEB && WRITEMODE_B == "WRITETHROUGH") next_b[j] = dib[j];
		end
		if (on_a && WEA)
			for (j = 0; j < DATA_WIDTH_A; j = j + 1)
				if (byte_on(DATA_WIDTH_A, ada, j)) begin
					bits[bit_at(DATA_WIDTH_A, ada, j)] = dia[j];
					written_a[bit_at(DATA_WIDTH_A, ada, j)] = 1'b1;
				end
		if (on_b && WEB)
			for (j = 0; j < DATA_WIDTH_B; j = j + 1)
				if (byte_on(DATA_WIDTH_B, adb, j)) begin
					if (written_a[bit_at(DATA_WIDTH_B, adb, j)]) bits[bit_at(DATA_WIDTH_B, adb, j)] = 1'bx;
					else bits[bit_at(DATA_WIDTH_B, adb, j)] = dib[j];
				end
		// a read of bits the other port writes at this edge collides
		for (j = 0; j < DATA_WIDTH_B; j = j + 1)
			if (on_b && !WEB && written_a[bit_at(DATA_WIDTH_B, adb, j)]) next_b[j] = 1'bx;
		if (on_b && WEB)
			for (j = 0; j < DATA_WIDTH_B; j = j + 1)
				if (byte_on(DATA_WIDTH_B, adb, j))
					for (r = 0; r < DATA_WIDTH_A; r = r + 1)
						if (on_a && !WEA && bit_at(DATA_WIDTH_A, ada, r) == bit_at(DATA_WIDTH_B, adb, j)) next_a[r] = 1'bx;
		// the output registers take the latches of before this edge
		if (RSTA) reg_a <= 18'h0;
		else if (OCEA) reg_a <= ram_a;
		if (RSTB) reg_b <= 18'h0;
		else if (OCEB) reg_b <= ram_b;
		ram_a <= RSTA ? 18'h0 : next_a;
		ram_b <= RSTB ? 18'h0 : next_b;
	end
	wire [17:0] doa = REGMODE_A == "OUTREG" ? reg_a : ram_a;
	wire [17:0] dob = REGMODE_B == "OUTREG" ? reg_b : ram_b;
	assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
	assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
endmodule
