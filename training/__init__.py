"""The model side: pretraining, annealing, post-training (SFT, reward model, DPO, PPO),
generation and evaluation (torch, never pyspark).

Kept free of imports so `import training` stays cheap; import the submodules you need.
"""
