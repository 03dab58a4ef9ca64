"""The filter stage's steps: one small class per filter, each a pure decision on one document."""
