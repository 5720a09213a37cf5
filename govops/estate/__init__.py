"""One estate that agrees with itself: the registry, the Pulumi plan, the rendered inventory,
the prober's and Prometheus' targets and the runbooks, compared (`govops estate check`)."""
