"""Oracle for kite bench's summary statistics: numpy's default percentile (method="linear"),
mean and population std. Input: lines "PCTS p1 p2 ..." then one line per sample of hex floats
(float.hex format). Output: per sample one line "mean std p1_value p2_value ..." in hex."""
import sys

import numpy as np


def main():
    lines = [l.split() for l in open(sys.argv[1]) if l.strip()]
    pcts = [float(x) for x in lines[0][1:]]
    for row in lines[1:]:
        a = np.array([float.fromhex(x) for x in row], dtype=np.float64)
        vals = [a.mean(), a.std()] + [np.percentile(a, p) for p in pcts]
        print(" ".join(float(v).hex() for v in vals))


if __name__ == "__main__":
    main()
