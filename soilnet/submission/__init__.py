"""Running soilnet jobs on Ray clusters: the Ray Jobs API and KubeRay RayJob resources."""
