"""Committed measurements the software side reads as data: the PE area table (`make pe-table`, from Yosys) and the
cost model's calibration (`make calibrate`, from RTL cycle counts). The search never runs the RTL; it reads these."""
