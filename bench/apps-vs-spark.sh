#!/usr/bin/env bash
# The paper's applications against Spark, in one command:
#
#   bash bench/apps-vs-spark.sh [--quick] [--runs N]
#
# Generates the data once (k-means: 200k x 100, k = 25, 10 iterations; logistic
# regression: 200k x 100, 100 full-batch iterations), then on the same files and
# the same cores runs the Crucial examples (embedded node, 2 cloud threads), their
# plain-threads twins (same kernels), and Spark (pyspark, local[2]), and prints
# one table. Installs what is missing: Java 17 from Debian, pyspark and numpy
# from PyPI. Crucial and plain-threads times are whole runs (reading the file
# included; best of --runs); Spark's is the warm fit on a cached RDD (load and
# JVM start excluded), so the ratio is conservative for Crucial.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
points=200000
kiters=10
liters=100
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) points=20000; runs=1 ;;
    --runs) runs="$2"; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

if ! java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
  echo "installing Java 17 (Debian openjdk-17-jre-headless)" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -q openjdk-17-jre-headless >&2
fi
if ! python3 -c 'import pyspark, numpy' 2>/dev/null; then
  echo "installing pyspark 4.0.1 and numpy (PyPI)" >&2
  python3 -m pip install -q 'pyspark==4.0.1' numpy >&2
fi

cargo build -q --release -p kmeans -p logreg
bin=target/release
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

echo "generating data in $data" >&2
"$bin/kmeans" --points $points --dims 100 --iterations 1 --write-data "$data/kmeans.npy" >/dev/null
"$bin/logreg" --points $points --dims 100 --iterations 1 --write-data "$data/logreg" >/dev/null

# Best "total: X s" of $runs runs of a command; also keeps the last output.
best() {
  local best="" t
  for _ in $(seq "$runs"); do
    "$@" >"$data/out" 2>/dev/null
    t=$(sed -n 's/^total: \([0-9.]*\) s.*/\1/p' "$data/out")
    best=$(python3 -c "print(min(x for x in [$t, ${best:-$t}]))")
  done
  echo "$best"
}

echo "running Crucial and plain threads ($runs runs each)" >&2
k_args=(--data "$data/kmeans.npy" --k 25 --iterations $kiters --threads 2)
l_args=(--data "$data/logreg" --iterations $liters --threads 2)
k_crucial=$(best "$bin/kmeans" "${k_args[@]}")
k_cost=$(sed -n 's/^final cost: //p' "$data/out")
k_std=$(best "$bin/kmeans-std" "${k_args[@]}")
l_crucial=$(best "$bin/logreg" "${l_args[@]}")
l_acc=$(sed -n 's/^final accuracy: //p' "$data/out")
l_std=$(best "$bin/logreg-std" "${l_args[@]}")

echo "running Spark (local[2]); this takes a minute or two" >&2
python3 bench/spark/apps.py --kmeans-data "$data/kmeans.npy" --kmeans-iterations $kiters \
  --logreg-data "$data/logreg" --logreg-iterations $liters --cores 2 \
  2> "$data/spark.log" | tee "$data/spark" | sed 's/^RESULT /spark: /' >&2 || {
  tail -20 "$data/spark.log" >&2
  exit 1
}
spark() { sed -n "s/^RESULT $1 \([0-9.]*\).*/\1/p" "$data/spark"; }
extra() { sed -n "s/^RESULT $1 [0-9.]* \(.*\)/\1/p" "$data/spark"; }

echo
echo "# applications vs Spark: $points x 100 points, $(nproc) cores, best of $runs runs"
echo
echo "| application | Crucial (s) | plain threads (s) | Crucial / threads | Spark warm fit (s) | Spark / Crucial | check |"
echo "|---|---|---|---|---|---|---|"
python3 - "$k_crucial" "$k_std" "$(spark kmeans-warm)" "$k_cost" "$(extra kmeans-warm)" \
  "$l_crucial" "$l_std" "$(spark logreg-sgd-warm)" "$l_acc" "$(extra logreg-sgd-warm)" \
  "$(spark logreg-lbfgs-warm)" "$(extra logreg-lbfgs-warm)" <<'EOF'
import sys
kc, ks, kspark, kcost, kextra, lc, ls, lspark, lacc, lextra, lbfgs, lbextra = sys.argv[1:]
kc, ks, kspark, lc, ls, lspark, lbfgs = map(float, (kc, ks, kspark, lc, ls, lspark, lbfgs))
print(f"| k-means, k = 25, {10} iterations | {kc:.2f} | {ks:.2f} | {kc / ks:.3f} | {kspark:.2f} | {kspark / kc:.1f}x | cost {float(kcost):.4e} vs Spark {kextra} |")
print(f"| logistic regression, 100 GD iterations | {lc:.2f} | {ls:.2f} | {lc / ls:.3f} | {lspark:.2f} (SGD, fraction 1.0) | {lspark / lc:.1f}x | accuracy {lacc} vs Spark {lextra} |")
print(f"| logistic regression, Spark's L-BFGS, 100 iterations | {lc:.2f} | {ls:.2f} | {lc / ls:.3f} | {lbfgs:.2f} | {lbfgs / lc:.1f}x | Spark {lbextra} |")
EOF
