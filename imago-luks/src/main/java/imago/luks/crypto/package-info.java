/**
 * The cryptography of LUKS: block ciphers (AES on the JDK's provider; Serpent, Twofish and CAST5 on Bouncy Castle's
 * engines) in XTS, CBC, ECB and CTR over sectors, their IV generators, PBKDF2, Argon2 and the AF splitter.
 */
package imago.luks.crypto;
