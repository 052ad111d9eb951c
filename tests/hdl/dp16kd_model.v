// Behavioural model of the Lattice ECP5 DP16KD block RAM, for skipcore's tests only.
//
// It covers what skipcore uses and what Yosys' memory_libmap emits for a two-port ROM: 18-bit
// ports (DATA_WIDTH_A/B = 18: ADx[13:4] is the word address), reads with a synchronous reset
// (RESETMODE "SYNC"; with "ASYNC" a reset stops the simulation), REGMODE "NOREG" (the word read at a clock edge is on DOx after it) and
// "OUTREG" (registered once more at the next edge while OCEx is high), chip selects against
// CSDECODE, and the INITVAL_00..3F initial contents: 16 words of 18 bits in 20-bit fields per
// 320-bit row (Yosys share/lattice/brams_map_16kd.v). Any other width or a write stops the
// simulation with a message. tests/test_boards_ecp5_memory.py checks it against Yosys' mapping.
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
		if (DATA_WIDTH_A != 18 || DATA_WIDTH_B != 18 || CLKAMUX != "CLKA" || CLKBMUX != "CLKB") begin
			$display("DP16KD model: only 18-bit ports and plain clocks are modelled");
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

	// port A
	wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
	wire [2:0] csa = {CSA2, CSA1, CSA0};
	reg [17:0] ram_a = 18'h0;   // the array's read latch (NOREG output)
	reg [17:0] reg_a = 18'h0;   // the output register (OUTREG)
	always @(posedge CLKA) begin
		if (RSTA && RESETMODE != "SYNC") begin
			$display("DP16KD model: port A resets asynchronously, which this model does not cover");
			$finish;
		end
		if (WEA) begin
			$display("DP16KD model: port A writes, which this model does not cover");
			$finish;
		end
		if (RSTA) ram_a <= 18'h0;
		else if (CEA && csa == csdecode_a) ram_a <= mem[ada[13:4]];
		if (RSTA) reg_a <= 18'h0;
		else if (OCEA) reg_a <= ram_a;
	end
	wire [17:0] doa = REGMODE_A == "OUTREG" ? reg_a : ram_a;
	assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;

	// port B
	wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
	wire [2:0] csb = {CSB2, CSB1, CSB0};
	reg [17:0] ram_b = 18'h0;   // the array's read latch (NOREG output)
	reg [17:0] reg_b = 18'h0;   // the output register (OUTREG)
	always @(posedge CLKB) begin
		if (RSTB && RESETMODE != "SYNC") begin
			$display("DP16KD model: port B resets asynchronously, which this model does not cover");
			$finish;
		end
		if (WEB) begin
			$display("DP16KD model: port B writes, which this model does not cover");
			$finish;
		end
		if (RSTB) ram_b <= 18'h0;
		else if (CEB && csb == csdecode_b) ram_b <= mem[adb[13:4]];
		if (RSTB) reg_b <= 18'h0;
		else if (OCEB) reg_b <= ram_b;
	end
	wire [17:0] dob = REGMODE_B == "OUTREG" ? reg_b : ram_b;
	assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
endmodule
