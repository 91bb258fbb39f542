"""JAQ: the joint search of architecture, weight bits and accelerator, its baselines, design record and report."""
