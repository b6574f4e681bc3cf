"""Cinder's own test driver, with volumes in plain files.

cinder.tests.fake_driver.FakeLoggingVolumeDriver (in the cinder wheel) is the
LVM driver with lvcreate/export made no-ops, but its local_path() is under
/dev/mapper, which does not exist here. This subclass keeps every upstream
code path (glance download, format inspection, qemu-img convert,
attachments) and only puts each volume in a file under
$OPENSTACK_DEV_VOLUMES. cinder-volume finds it through PYTHONPATH
(volume_driver = cinder_file_driver.FileVolumeDriver).
"""
import os

from cinder.tests import fake_driver


class FileVolumeDriver(fake_driver.FakeLoggingVolumeDriver):
    def local_path(self, volume, vg=None):
        where = os.environ["OPENSTACK_DEV_VOLUMES"]
        os.makedirs(where, exist_ok=True)
        return os.path.join(where, volume["name"])

    def delete_volume(self, volume):
        try:
            os.unlink(self.local_path(volume))
        except FileNotFoundError:
            pass
