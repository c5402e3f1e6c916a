package cluster

import "github.com/prometheus/client_golang/prometheus"

var (
	partitionsOwnedDesc = prometheus.NewDesc("holdfast_cluster_partitions_owned",
		"Sync partitions this node holds, of holdfast.PartitionCount (1024).", nil, nil)
	nodesLiveDesc = prometheus.NewDesc("holdfast_cluster_nodes_live",
		"Live nodes of the cluster at this node's last heartbeat.", nil, nil)
)

// Collector returns a Prometheus collector of the Membership: the
// partitions this node holds and the live nodes.
func (m *Membership) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Membership }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- partitionsOwnedDesc
	ch <- nodesLiveDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(partitionsOwnedDesc, prometheus.GaugeValue, float64(len(c.m.Partitions())))
	ch <- prometheus.MustNewConstMetric(nodesLiveDesc, prometheus.GaugeValue, float64(c.m.LiveNodes()))
}
