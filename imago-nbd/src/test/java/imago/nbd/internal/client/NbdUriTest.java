package imago.nbd.internal.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** NBD URIs as the specification and libnbd write them, and the ones they refuse. */
class NbdUriTest {
    @Test
    void tcpUrisNameHostPortAndExport() {
        NbdUri u = NbdUri.parse("nbd://example.com/disk%20one");
        assertEquals(InetSocketAddress.createUnresolved("example.com", 10809), u.address());
        assertEquals("disk one", u.export());
        assertFalse(u.tls());
        assertEquals("nbd://example.com:10809/disk one", u.canonical());
        assertEquals("", NbdUri.parse("nbd://h").export());
        assertEquals("", NbdUri.parse("nbd://h:1234/").export());
        assertEquals(1234, ((InetSocketAddress) NbdUri.parse("nbd://h:1234/").address()).getPort());
        assertEquals("::1", ((InetSocketAddress) NbdUri.parse("nbd://[::1]:99/x").address()).getHostString());
        assertEquals("a/b", NbdUri.parse("nbd://h/a/b").export());
        assertTrue(NbdUri.parse("nbds://h/x").tls());
    }

    @Test
    void unixUrisNameTheSocket() {
        NbdUri u = NbdUri.parse("nbd+unix:///exp?socket=/run/a%20b.sock&tls-verify-peer=false");
        assertEquals(UnixDomainSocketAddress.of(Path.of("/run/a b.sock")), u.address());
        assertEquals("exp", u.export());
        assertEquals("nbd+unix:///exp?socket=/run/a b.sock", u.canonical());
        assertEquals("nbd+unix://?socket=/s", NbdUri.parse("nbd+unix:///?socket=/s").canonical());
        // a plus sign is a plus sign in a URI (not a space, as in a form)
        assertEquals("a+b", NbdUri.parse("nbd+unix:///a+b?socket=/s").export());
    }

    @Test
    void badUrisSayWhatIsWrong() {
        for (String[] c : new String[][] {{"nbd+unix:///x", "socket=PATH"}, {"nbd+unix://host/x?socket=/s", "no host"},
            {"nbd:///x", "no host"}, {"http://h/x", "scheme"}, {"nbd://h/%zz", "escape"}, {"nbd:x", "nbd://"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NbdUri.parse(c[0]), c[0]);
            assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
        assertTrue(NbdUri.isNbd("NBD+UNIX:///?socket=/s"));
        assertFalse(NbdUri.isNbd("nbd.qcow2"));
        assertFalse(NbdUri.isNbd("nbd:disk"));
    }
}
