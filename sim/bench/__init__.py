"""The RTL-side benchmarks (`codesign bench NAME`), JSON out."""
