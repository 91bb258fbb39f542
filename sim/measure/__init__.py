"""RTL measurements that feed the software side: cost-model calibration and OHQ's measured layer costs."""
