"""What flows between the stages: the layer IR, the integer model and its numpy executor."""
