"""The software-side benchmarks (`codesign bench NAME`), JSON out."""
