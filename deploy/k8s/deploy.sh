#!/usr/bin/env bash
# Deploy one overlay in order: the "prepare" stage (namespace, service accounts, network
# policies, migration Jobs), wait for every migration, then everything else, then wait for each
# Deployment's rollout. Rendered once, so both stages apply the same objects.
#
# Usage: deploy/k8s/deploy.sh dev|prod        (KUBECTL=… to use another kubectl; the current
#                                              kube context is the target cluster)
set -euo pipefail

overlay=${1:?usage: deploy/k8s/deploy.sh dev|prod}
here=$(cd "$(dirname "$0")" && pwd)
dir="$here/overlays/$overlay"
kubectl=${KUBECTL:-kubectl}
migration=app.kubernetes.io/component=migration
namespace=$(sed -n 's/^namespace: *//p' "$dir/kustomization.yaml")
[ -n "$namespace" ] || { echo "no namespace in $dir/kustomization.yaml" >&2; exit 1; }

rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
$kubectl kustomize "$dir" >"$rendered"

wait_for_job() {
  local job=$1 deadline=$((SECONDS + 600)) conditions
  while ((SECONDS < deadline)); do
    conditions=$($kubectl -n "$namespace" get "$job" \
      -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')
    case " $conditions " in
      *" Complete "*) echo "$job: complete"; return 0 ;;
      *" Failed "*)
        echo "$job: FAILED; its last log lines:" >&2
        $kubectl -n "$namespace" logs "$job" --tail=50 >&2 || true
        return 1 ;;
    esac
    sleep 5
  done
  echo "$job: not complete after 10 minutes" >&2
  return 1
}

echo "== $overlay: prepare (namespace $namespace, accounts, policies, migrations)"
# A Job's pod template cannot change: the previous release's migration Jobs go first.
$kubectl -n "$namespace" delete job -l "$migration" --ignore-not-found --wait=true
$kubectl apply -f "$rendered" -l tatame.dev/stage=prepare
for job in $($kubectl -n "$namespace" get job -l "$migration" -o name); do
  wait_for_job "$job"
done

echo "== $overlay: roll out"
$kubectl apply -f "$rendered"
for deployment in $($kubectl -n "$namespace" get deployment -l app.kubernetes.io/part-of=tatame-billing -o name); do
  $kubectl -n "$namespace" rollout status "$deployment" --timeout=10m
done
echo "== $overlay: deployed"
