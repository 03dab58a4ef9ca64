"""Pretraining and annealing: model, data loader, trainer loop, checkpoints (torch, no pyspark).

Kept free of imports so `import training` stays cheap; import the submodules you need.
"""
