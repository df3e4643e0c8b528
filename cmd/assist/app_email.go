package main

// emailInvitation sends the open invitation by e-mail and says how it
// went, in words for the novice. E-mail is being built on its own branch
// (h-mail); until it is merged the button says what to do instead.
func emailInvitation() string {
	return "Sending by e-mail is not available in this version yet. Click Save as file and attach the file to an e-mail, or Copy the link and paste it into one."
}
