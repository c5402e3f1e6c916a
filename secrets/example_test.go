package secrets_test

import (
	"fmt"
	"log"

	"github.com/holdfast/holdfast/secrets"
)

func ExampleSealCredentials() {
	// In production the keyring comes from FromEnv or LoadOrCreateFile.
	key, err := secrets.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	k, err := secrets.NewKeyring(key)
	if err != nil {
		log.Fatal(err)
	}

	creds := secrets.Credentials{Password: "hunter2"}
	sealed, err := secrets.SealCredentials(k, "inb_01", creds)
	if err != nil {
		log.Fatal(err)
	}
	id, _ := secrets.KeyID(sealed)
	fmt.Println("sealed under the active key:", id == k.ActiveID())

	opened, err := secrets.OpenCredentials(k, "inb_01", sealed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("opened:", opened.Password)
	fmt.Println("printed:", opened)

	_, err = secrets.OpenCredentials(k, "inb_02", sealed)
	fmt.Println("another inbox:", err)
	// Output:
	// sealed under the active key: true
	// opened: hunter2
	// printed: {Password:[redacted] RefreshToken:}
	// another inbox: open credentials for inbox inb_02: ciphertext failed authentication
}
