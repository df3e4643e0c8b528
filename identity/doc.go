// Package identity keeps what makes this installation someone: its device key
// and its config file, in the user's config directory.
//
// The directory is $ASSIST_CONFIG_DIR if set (tests run several users on one
// machine this way), else $XDG_CONFIG_HOME/assist, else ~/.config/assist
// (os.UserConfigDir on other systems). It is created 0700. It holds:
//
//   - device.key (0600): the 32-byte Ed25519 seed of this device, created on
//     first use. A key file that other users can read is refused: whoever reads
//     it can log in as this device and pass for it in sessions.
//   - config.json (0600): the server, its certificate pin, the account and
//     the contacts' pinned keys (Config). Pinned keys live here, on the device,
//     and not on the server, so that a server cannot substitute them.
//
// Both files are written atomically (a temporary file renamed into place), so a
// crash leaves the old file or the new one, never half of one.
package identity
