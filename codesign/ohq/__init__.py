"""OHQ: hardware-measured mixed precision (MQE sensitivity, ILP bit allocation) for a trained model."""
