"""The bare `ArrayCore` on the simulator: tile encodings, harness, testbench and runner."""
