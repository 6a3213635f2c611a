"""Operations: systemd notification, health, readiness and metrics."""
