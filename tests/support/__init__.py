"""What the tests share: commands run as a user runs them, the runs a store holds, faults to inject,
small IDX datasets, and a tracking server to stop and start."""
