"""Hardware side: Amaranth components of the accelerator, Verilog emission and the synthesis flow."""
