/** The cryptography of LUKS on the JDK's providers: AES in XTS and CBC over sectors, PBKDF2, the AF splitter. */
package imago.luks.crypto;
