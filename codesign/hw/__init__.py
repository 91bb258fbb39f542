"""The hardware contract that `rtl_gen` reads: configuration, ISA and operand encodings, register map, timing and
the integer reference (`codesign.sources.HARDWARE_CONTRACT` lists its modules)."""
