"""Benchmarks run by `lavimo bench NAME`, one module per benchmark; each prints its figures (none is a timed test).

Kept out of the library packages: a benchmark drives a package on real data, like a CLI command does. This
package imports nothing itself, so that `lavimo bench render` never imports torch.
"""
