#!/bin/sh
# Boots the test VM (see build-test-vm.sh) under QEMU with TCG.
#
# usage: run-test-vm.sh [options] [-- extra QEMU arguments]
#   --name NAME         QEMU -name, how D-Bus clients tell VMs apart (testvm)
#   --bus ADDRESS       D-Bus display on that bus (-display dbus,addr=ADDRESS)
#   --p2p QMP_SOCKET    peer-to-peer D-Bus display; clients attach through
#                       QMP add_client on this UNIX socket
#   --display SPEC      any other -display value (e.g. none); default is the
#                       D-Bus display on the session bus
#   --append ARGS       more kernel arguments, e.g.
#                       "vmpattern.output=drm vmpattern.modes=1024x768"
#   --serial FILE       guest serial console to FILE (default: stdout)
#   --vga TYPE          QEMU -vga TYPE (default std: bochs-drm/vesafb);
#                       virtio gives a virtio-gpu (virtio-vga) as console 0
#   --vnc DISPLAY       also serve VNC (:N or unix:PATH)
#   --vm-dir DIR        vmlinuz/initramfs.cpio.gz location
#                       (default $GST_VMDISPLAY_TEST_VM_DIR)
#
# Environment: QEMU, the emulator to run (default qemu-system-x86_64 from
# PATH; e.g. the QEMU 10 of scripts/install-qemu-prefix.sh, which also needs
# QEMU_MODULE_DIR and -L for its firmware, see docs/testing.md).
#
# The script ends by exec'ing QEMU, so its PID is QEMU's: callers signal it
# directly.
set -eu

die() {
	echo "run-test-vm: error: $*" >&2
	exit 1
}

need_arg() {
	[ $# -ge 2 ] || die "$1 needs an argument"
}

# QEMU option values escape ',' as ',,'. D-Bus addresses have commas
# (unix:path=...,guid=...).
qemu_escape() {
	printf '%s' "$1" | sed 's/,/,,/g'
}

name=testvm
display=dbus
qmp=
append=
serial=
vga=std
vnc=
vmdir=${GST_VMDISPLAY_TEST_VM_DIR:-}

while [ $# -gt 0 ]; do
	case "$1" in
	--name) need_arg "$@"; name=$2; shift 2 ;;
	--bus) need_arg "$@"; display="dbus,addr=$(qemu_escape "$2")"; shift 2 ;;
	--p2p) need_arg "$@"; display="dbus,p2p=yes"; qmp=$2; shift 2 ;;
	--display) need_arg "$@"; display=$2; shift 2 ;;
	--append) need_arg "$@"; append=$2; shift 2 ;;
	--serial) need_arg "$@"; serial=$2; shift 2 ;;
	--vga) need_arg "$@"; vga=$2; shift 2 ;;
	--vnc) need_arg "$@"; vnc=$2; shift 2 ;;
	--vm-dir) need_arg "$@"; vmdir=$2; shift 2 ;;
	--) shift; break ;;
	-h|--help) sed -n '2,26s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
done

[ -n "$vmdir" ] || die "no VM directory: pass --vm-dir or set GST_VMDISPLAY_TEST_VM_DIR"
for f in vmlinuz initramfs.cpio.gz; do
	[ -f "$vmdir/$f" ] || die "$vmdir/$f missing (build it with build-test-vm.sh)"
done
qemu=${QEMU:-qemu-system-x86_64}
command -v "$qemu" >/dev/null 2>&1 || die "$qemu not found (install qemu-system-x86)"

# vga=0x318: vesafb at 1024x768, 24 bpp, for vmpattern.output=fb.
cmdline="console=ttyS0 quiet vga=0x318 $append"

# The extra QEMU arguments stay in "$@"; ours go in front of them.
set -- -accel tcg -m 256 -nodefaults -no-user-config -no-reboot \
	-name "$(qemu_escape "$name")" -vga "$vga" -display "$display" \
	-kernel "$vmdir/vmlinuz" -initrd "$vmdir/initramfs.cpio.gz" \
	-append "$cmdline" "$@"
if [ -n "$serial" ]; then
	set -- "$@" -serial "file:$(qemu_escape "$serial")"
else
	# file:/dev/stdout rather than stdio: never puts a terminal in raw mode.
	set -- "$@" -serial file:/dev/stdout
fi
[ -z "$qmp" ] || set -- "$@" -qmp "unix:$(qemu_escape "$qmp"),server=on,wait=off"
[ -z "$vnc" ] || set -- "$@" -vnc "$vnc"

exec "$qemu" "$@"
