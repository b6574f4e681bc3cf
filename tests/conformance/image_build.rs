//! `stackbinder image build` against the dev cloud: boot a builder server
//! from a stock image with the base-image cloud-config, snapshot it, and
//! find the snapshot active in Glance under `cloud.image`.
//!
//! To be written with the image builder. The dev cloud supports it: the
//! fake virt driver's snapshot of an image-backed server uploads a small
//! disk (scripts/openstack-dev/nova_compute.py), and a volume-backed
//! server's snapshot is a Cinder snapshot plus a Glance image pointing at it
//! (the boot volume cannot be deleted before that snapshot is). The console
//! of a fake server is fixed text, so the builder's verdict line
//! (STACKBINDER-IMAGE-BUILD: OK) has to be simulated, not read.
