/* vgpuenv-kvm-init: the init of the KVM probe's initramfs (accel.c).
 *
 * It runs as PID 1 of a kernel booted under KVM. Reaching it means KVM got
 * through a whole kernel boot, which a broken nested KVM does not (it spins
 * after a few real-mode instructions): it says so on the console and powers
 * the VM off. Linked statically: the initramfs holds nothing else. */
#include <fcntl.h>
#include <string.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "provision/base/accel.h"

int main(void)
{
        static const char line[] = "\n" ACCEL_PROBE_MARKER "\n";
        int fd = open("/dev/console", O_WRONLY | O_NOCTTY);

        (void)!write(fd >= 0 ? fd : 1, line, strlen(line));
        sync();
        reboot(RB_POWER_OFF);
        for (;;)
                pause();
}
