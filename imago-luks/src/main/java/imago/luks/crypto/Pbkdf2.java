package imago.luks.crypto;

import java.util.Arrays;

/**
 * PBKDF2 (RFC 8018) over the JDK's HMACs (Bouncy Castle's for RIPEMD-160). Built on {@link javax.crypto.Mac}
 * rather than the JDK's {@code PBKDF2WithHmac*} key factories because LUKS feeds it binary passwords (the master
 * key, for the digest check), which the factories' {@code char[]} passwords cannot carry.
 */
public final class Pbkdf2 {
    private Pbkdf2() {
    }

    /**
     * Derives {@code length} bytes from {@code password} and {@code salt} with {@code iterations} rounds of
     * {@code hash}'s HMAC. The caller bounds {@code iterations}: this runs as long as it is asked to.
     *
     * @throws UnsupportedOperationException if the hash needs Bouncy Castle and it is absent
     */
    public static byte[] derive(LuksHash hash, byte[] password, byte[] salt, long iterations, int length) {
        if (iterations < 1 || length < 1) {
            throw new IllegalArgumentException("PBKDF2 needs at least one iteration and one byte, got "
                    + iterations + " and " + length);
        }
        Hmac mac = hash.hmac(password);
        int h = mac.length();
        byte[] out = new byte[length];
        byte[] u = new byte[h];
        byte[] t = new byte[h];
        for (int block = 1, done = 0; done < length; block++, done += h) {
            mac.update(salt, 0, salt.length);
            mac.update(new byte[] {(byte) (block >>> 24), (byte) (block >>> 16), (byte) (block >>> 8),
                    (byte) block}, 0, 4);
            mac.doFinal(u);
            System.arraycopy(u, 0, t, 0, h);
            for (long i = 1; i < iterations; i++) {
                mac.update(u, 0, h);
                mac.doFinal(u);
                for (int k = 0; k < h; k++) {
                    t[k] ^= u[k];
                }
            }
            System.arraycopy(t, 0, out, done, Math.min(h, length - done));
        }
        Arrays.fill(u, (byte) 0);
        Arrays.fill(t, (byte) 0);
        return out;
    }

    /**
     * How many iterations of {@code hash} this machine runs per second, measured over about {@code millis}
     * milliseconds of this thread's CPU time (as qemu-img and cryptsetup calibrate {@code iter-time}: on a busy
     * machine wall time would count other processes' work).
     */
    public static long iterationsPerSecond(LuksHash hash, long millis) {
        byte[] password = new byte[32];
        byte[] salt = new byte[32];
        long iterations = 1 << 12;
        long budget = Math.max(1, millis) * 1_000_000L;
        java.lang.management.ThreadMXBean cpu = java.lang.management.ManagementFactory.getThreadMXBean();
        boolean cpuTime = cpu.isCurrentThreadCpuTimeSupported();
        while (true) {
            long start = cpuTime ? cpu.getCurrentThreadCpuTime() : System.nanoTime();
            derive(hash, password, salt, iterations, hash.length());
            long elapsed = (cpuTime ? cpu.getCurrentThreadCpuTime() : System.nanoTime()) - start;
            if (elapsed >= budget || iterations > (1L << 40)) {
                return Math.max(1, iterations * 1_000_000_000L / Math.max(1, elapsed));
            }
            iterations *= 2;
        }
    }
}
