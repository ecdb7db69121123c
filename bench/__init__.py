"""The benchmark: a C load generator driven from Python, run against this server and ngircd.

``chat-bench`` / ``python -m bench``; see BENCHMARKS.md for the results and how to reproduce them.
"""
