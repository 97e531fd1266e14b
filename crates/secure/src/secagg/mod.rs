//! Dropout-tolerant secure aggregation.
