"""What `python -m experiments.bench` measures with: the replicated loops of d2l's train_ch6 and the classic
LeNet-5 recipe, run in processes of their own (replica), and a sweep timed by phase (sweep_timing)."""
