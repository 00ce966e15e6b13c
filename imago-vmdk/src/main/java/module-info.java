/** The vmdk format driver (VMware virtual disks: descriptors, flat, hosted sparse and streamOptimized extents). */
module imago.vmdk {
    requires imago.api;

    provides imago.api.spi.FormatDriver with imago.vmdk.internal.VmdkFormatDriver;
}
