"""The dom0 service around the exporter: configuration, sd_notify, control socket, schedule,
and the hook for Xen's own live update (docs/service.md)."""
