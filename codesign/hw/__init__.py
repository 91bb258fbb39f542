"""The hardware contract that `rtl_gen` reads: configuration, ISA and operand encodings, register map, timing, integer reference."""
