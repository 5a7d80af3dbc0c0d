#!/usr/bin/env python3
"""The kernel case's statistics and its report (bench/cases/single_calls.py,
report.py) on hand-made results: what the suite's verdict rests on."""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
from single_calls import paired_ratios  # noqa: E402


class PairedRatios(unittest.TestCase):
    def test_a_slow_round_cancels_out(self):
        # Round 2 ran while the machine was slow for Waverless and native
        # alike; native's median sample is a fast round, Waverless's the slow
        # one, so the ratio of medians reads 2x for a 1.05x system.
        ms = {"waverless": [105, 210, 210], "native": [100, 200, 100]}
        self.assertAlmostEqual(report.ratio(210, 100), 2.1)
        r = paired_ratios(ms)
        self.assertAlmostEqual(r["waverless"], 1.05)
        self.assertAlmostEqual(r["native"], 1.0)

    def test_median_of_an_even_count(self):
        r = paired_ratios({"w": [1.0, 2.0, 3.0, 4.0], "native": [1.0, 1.0, 1.0, 1.0]})
        self.assertAlmostEqual(r["w"], 2.5)

    def test_rounds_must_pair(self):
        with self.assertRaises(ValueError):
            paired_ratios({"waverless": [1.0, 2.0], "native": [1.0]})


def result(paired):
    k = {"args": "1000000 20", "runs": 3, "digests_agree": True,
         "ms": {"waverless": [105.0, 210.0, 210.0], "workerd": [120.0, 240.0, 120.0],
                "native": [100.0, 200.0, 100.0]}}
    k["median_ms"] = {s: sorted(v)[1] for s, v in k["ms"].items()}
    if paired:
        k["cpu_ms"] = {s: [x * 0.9 for x in v] for s, v in k["ms"].items()}
        k["median_cpu_ms"] = {s: sorted(v)[1] for s, v in k["cpu_ms"].items()}
        k["paired_ratio"] = paired_ratios(k["ms"])
        k["paired_cpu_ratio"] = paired_ratios(k["cpu_ms"])
    return {"kernel": k}


class KernelReport(unittest.TestCase):
    def test_a_run_with_rounds_shows_and_judges_the_paired_ratio(self):
        r = result(paired=True)
        md = report.kernel_md(r["kernel"])
        self.assertIn("÷ native (paired)", md)
        self.assertIn("| waverless | 210.0 ms | 105, 210, 210 | 2.10× | 1.050× | 189.0 ms | 1.050× |",
                      md)
        targets = report.targets(r)
        self.assertIn("**1.05×** paired per round (ratio of medians 2.10×)", targets)
        self.assertIn("**met**", targets)

    def test_an_older_run_keeps_its_table_and_verdict(self):
        r = result(paired=False)
        md = report.kernel_md(r["kernel"])
        self.assertNotIn("paired", md)
        self.assertIn("| waverless | 210.0 ms | 105, 210, 210 | 2.10× |\n", md)
        targets = report.targets(r)
        self.assertIn("wasm in Waverless / native = **2.10×** |", targets)
        self.assertIn("missed", targets)


if __name__ == "__main__":
    unittest.main()
