"""A real Prometheus server that tests can point at extra scrape targets."""

from __future__ import annotations

from servingopt.devcluster import DevCluster, Prometheus, wait_until


def test_prometheus_scrapes_itself(prometheus: Prometheus) -> None:
    result = wait_until(
        lambda: prometheus.query('up{job="prometheus"} == 1'), 30, "prometheus to scrape itself"
    )
    assert result[0]["metric"]["instance"].startswith("127.0.0.1:")


def test_static_targets_are_picked_up_without_restart(
    prometheus: Prometheus, dev_cluster: DevCluster
) -> None:
    assert dev_cluster.ports is not None
    kwok = f"127.0.0.1:{dev_cluster.ports.kwok}"  # kwok serves /metrics over plain HTTP
    prometheus.add_static_targets("kwok", [kwok], {"component": "kwok"})
    try:
        result = wait_until(
            lambda: prometheus.query('up{job="kwok", component="kwok"} == 1'),
            30,
            "the kwok target to be scraped",
        )
        assert result[0]["metric"]["instance"] == kwok
    finally:
        prometheus.remove_static_targets("kwok")


def test_full_scrape_configs_apply_after_reload(
    prometheus: Prometheus, dev_cluster: DevCluster
) -> None:
    assert dev_cluster.ports is not None
    prometheus.add_scrape_config(
        {
            "job_name": "kwok-reloaded",
            "scrape_interval": "1s",
            "static_configs": [{"targets": [f"127.0.0.1:{dev_cluster.ports.kwok}"]}],
        }
    )
    wait_until(
        lambda: prometheus.query('up{job="kwok-reloaded"} == 1'),
        30,
        "the reloaded scrape config to take effect",
    )
