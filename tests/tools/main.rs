//! Tests that need tools built from their Go modules, not a cluster: the chart rendered by real
//! Helm and its alerting rules checked and unit-tested by promtool, and the image inspector
//! against a real OCI registry (distribution, crane). `scripts/test.sh --stage tools` builds the
//! tools and runs this; without them it stops with one line saying which and how to build them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chart;
mod chart_access;
mod chart_monitoring;
mod chart_policy;
mod images_registry;
