"""The whole accelerator on the simulator: DRAM model, host driver, testbench and runner."""
