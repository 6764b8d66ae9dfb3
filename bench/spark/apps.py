"""k-means and logistic regression on Spark, on the same .npy files and cores
as the Crucial examples (driven by bench/apps-vs-spark.sh).

Spark runs `local[N]`. Each algorithm is fitted twice on a cached RDD; the
second ("warm") fit is the figure the comparison uses, so neither the JVM's
start nor the Python-to-JVM copy of the data counts against Spark. The first
fit and the load are printed too.

k-means starts from the same k centroids as the Crucial example (the points at
`sample_index(j)` of the generator, reimplemented below), runs exactly the given
number of iterations (epsilon 0), and prints its final cost, which the script
compares with Crucial's.

Logistic regression is full-batch gradient descent (`LogisticRegressionWithSGD`,
miniBatchFraction 1.0, no regularisation, convergence test off), the same
algorithm the example runs; Spark's step shrinks as step/sqrt(t), so losses
differ slightly. `LogisticRegression` (L-BFGS, the one Spark's documentation
recommends) runs the same number of iterations as a second row.

Prints one line per measurement: `RESULT <name> <seconds> [<extra>]`.
"""

import argparse
import time
import warnings

import numpy as np
from pyspark import SparkConf, SparkContext

M64 = (1 << 64) - 1


def splitmix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def sample_index(seed, j, points):
    """datasets::Shape::sample_index: the j-th initial centroid's row."""
    return splitmix(seed ^ splitmix(j + 1)) % points


def timed(f):
    start = time.perf_counter()
    out = f()
    return time.perf_counter() - start, out


def kmeans(sc, args):
    from pyspark.mllib.clustering import KMeans, KMeansModel

    x = np.load(args.kmeans_data)
    points, _ = x.shape
    initial = [x[sample_index(args.seed, j, points)] for j in range(args.k)]
    load, rdd = timed(lambda: sc.parallelize(list(x), args.cores).cache())
    load2, _ = timed(rdd.count)
    print(f"RESULT kmeans-load {load + load2:.3f}", flush=True)
    for run in ("first", "warm"):
        secs, model = timed(
            lambda: KMeans.train(
                rdd,
                args.k,
                maxIterations=args.kmeans_iterations,
                initialModel=KMeansModel(initial),
                epsilon=0.0,
            )
        )
        cost = model.computeCost(rdd)
        print(f"RESULT kmeans-{run} {secs:.3f} cost={cost:.6e}", flush=True)


def logreg(sc, args):
    from pyspark.mllib.classification import LogisticRegressionWithLBFGS, LogisticRegressionWithSGD
    from pyspark.mllib.regression import LabeledPoint

    x = np.load(args.logreg_data + "-x.npy")
    y = np.load(args.logreg_data + "-y.npy").reshape(-1)
    rows = [LabeledPoint(label, row) for label, row in zip(y, x)]
    load, rdd = timed(lambda: sc.parallelize(rows, args.cores).cache())
    load2, _ = timed(rdd.count)
    print(f"RESULT logreg-load {load + load2:.3f}", flush=True)

    def accuracy(model):
        model.clearThreshold()
        model.setThreshold(0.5)
        right = rdd.map(lambda p: float(model.predict(p.features) == p.label)).sum()
        return right / len(rows)

    for run in ("first", "warm"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            secs, model = timed(
                lambda: LogisticRegressionWithSGD.train(
                    rdd,
                    iterations=args.logreg_iterations,
                    step=1.0,
                    miniBatchFraction=1.0,
                    regParam=0.0,
                    regType=None,
                    intercept=False,
                    convergenceTol=0.0,
                )
            )
        print(f"RESULT logreg-sgd-{run} {secs:.3f} accuracy={accuracy(model):.4f}", flush=True)
    secs, model = timed(
        lambda: LogisticRegressionWithLBFGS.train(
            rdd, iterations=args.logreg_iterations, regParam=0.0, regType=None, tolerance=0.0
        )
    )
    print(f"RESULT logreg-lbfgs-warm {secs:.3f} accuracy={accuracy(model):.4f}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kmeans-data", required=True, help="points x dims .npy file")
    p.add_argument("--k", type=int, default=25)
    p.add_argument("--kmeans-iterations", type=int, default=10)
    p.add_argument("--seed", type=int, default=42, help="the generator seed the file was written with")
    p.add_argument("--logreg-data", required=True, help="PREFIX of PREFIX-x.npy and PREFIX-y.npy")
    p.add_argument("--logreg-iterations", type=int, default=100)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--memory", default="8g")
    args = p.parse_args()
    conf = (
        SparkConf()
        .setMaster(f"local[{args.cores}]")
        .setAppName("crucial-apps-vs-spark")
        .set("spark.driver.memory", args.memory)
        .set("spark.ui.enabled", "false")
    )
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    try:
        kmeans(sc, args)
        logreg(sc, args)
    finally:
        sc.stop()


if __name__ == "__main__":
    main()
