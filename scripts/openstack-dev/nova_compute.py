"""nova-compute on Nova's own fake virt driver, with snapshots uploaded.

nova.virt.fake.FakeDriver boots nothing (servers go ACTIVE at once) and its
snapshot() uploads nothing, so createImage of an image-backed server would
leave the glance image queued forever; UploadingFakeDriver uploads a tiny raw
disk as a real driver does. (A volume-backed server's snapshot is a cinder
snapshot and never reaches the driver.) Nova imports its driver as
"nova.virt." + compute_driver, so the class is registered under that
namespace: compute_driver = openstack_dev.UploadingFakeDriver.
"""
import io
import sys
import types

from nova.cmd import compute  # first: it applies nova's monkey patching
from nova.image import glance
from nova.virt import fake


class UploadingFakeDriver(fake.FakeDriver):
    def snapshot(self, context, instance, image_id, update_task_state):
        super().snapshot(context, instance, image_id, update_task_state)
        glance.API().update(
            context, image_id, {"disk_format": "raw", "container_format": "bare"},
            data=io.BytesIO(bytes(65536)), purge_props=False)


module = types.ModuleType("nova.virt.openstack_dev")
module.UploadingFakeDriver = UploadingFakeDriver
sys.modules["nova.virt.openstack_dev"] = module
sys.argv[0] = "nova-compute"
sys.exit(compute.main())
