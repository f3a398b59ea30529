"""The agemem-bench harness: runner, tables, reports and performance benchmarks."""
