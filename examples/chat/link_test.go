package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	linkCodeRE  = regexp.MustCompile(`link code for alice\.2 "laptop": (\S+)$`)
	shortFormRE = regexp.MustCompile(`short form: (\d{4}-\d{4}-\d{4})$`)
)

// TestLinkSecondDevice: Alice's laptop (device 2) links to the account her
// phone made on its first start: /link on the laptop, /approve on the
// phone with the same short form on both. Bob sees the device added; his
// one message reaches both of Alice's devices (SendUser, one batch);
// what either of Alice's devices sends shows on the other as a copy; and
// once the phone removes the laptop, Bob sees that and the laptop gets
// nothing more.
func TestLinkSecondDevice(t *testing.T) {
	hs := newRelay(t)
	dir := t.TempDir()
	phone := startChat(t, hs.URL, "alice", filepath.Join(dir, "alice.db"), "-name", "phone")
	phone.expectEver(`made an account for alice: this device is 1 "phone"`)
	bob := startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	phone.cmd("/add bob")
	phone.expect("added bob.1")
	phone.cmd("/msg bob hello from one device")
	bob.expectEver("<alice> hello from one device")
	bob.expectEver(`alice's account: device list version 1, devices 1 "phone"`)

	laptop := startChat(t, hs.URL, "alice", filepath.Join(dir, "alice-laptop.db"), "-device", "2", "-name", "laptop")
	laptop.expectEver("this device has no account yet: type /link")
	laptop.cmd("/devices")
	laptop.expect("this device is on no account yet")
	laptop.cmd("/link")
	m := linkCodeRE.FindStringSubmatch(laptop.expect("link code for alice.2"))
	s := shortFormRE.FindStringSubmatch(laptop.expect("short form: "))
	if m == nil || s == nil {
		t.Fatalf("no link code or short form: %q %q", m, s)
	}
	phone.cmd("/approve nonsense")
	phone.expect("! not a link code")
	phone.cmd("/approve " + m[1])
	phone.expect(`link alice.2 "laptop"? short form: ` + s[1])
	phone.cmd("/approve yes")
	phone.expect(`approved alice.2 "laptop": device list version 2; a notice to 1 device(s), then the provisioning`)
	laptop.expectEver("linked: this device is now alice.2 on alice's account, without the account key")
	bob.expectEver(`alice's account: device added: 2 "laptop" (list version 2)`)

	phone.cmd("/devices")
	phone.expect("alice's devices (list version 2")
	phone.expect("this device holds the account key")
	phone.expect("1  phone  (this device)")
	phone.expect("2  laptop")
	laptop.cmd("/devices")
	laptop.expect("this device does not hold the account key")
	laptop.expect("2  laptop  (this device)")
	laptop.cmd("/approve " + m[1])
	laptop.expect("! this device does not hold the account key")

	// Bob's one message reaches both devices.
	bob.cmd("/msg alice hi, both of you")
	bob.expect(`✓ sent to alice: "hi, both of you"`)
	phone.expectEver("<bob> hi, both of you")
	laptop.expectEver("<bob> hi, both of you")

	// What one of Alice's devices sends, the other shows as a copy.
	phone.cmd("/msg bob sent from the phone")
	bob.expectEver("<alice> sent from the phone")
	laptop.expectEver("you (on phone) → bob: sent from the phone")
	laptop.cmd("/msg bob sent from the laptop")
	laptop.expect(`✓ sent to bob: "sent from the laptop"`)
	bob.expectEver("<alice> sent from the laptop")
	phone.expectEver("you (on laptop) → bob: sent from the laptop")
	laptop.cmd("/history bob")
	laptop.expect("me → bob: sent from the phone")

	// The account safety number is the same on both of Alice's devices
	// and Bob's.
	accountRE := regexp.MustCompile(`account safety number with \S+: ([0-9 ]+) \(`)
	var nums []string
	for _, c := range []struct {
		t    *term
		user string
	}{{phone, "bob"}, {laptop, "bob"}, {bob, "alice"}} {
		c.t.cmd("/safety " + c.user)
		sn := accountRE.FindStringSubmatch(c.t.expect("account safety number with " + c.user))
		if sn == nil {
			t.Fatalf("%s: no account safety number", c.t.name)
		}
		nums = append(nums, sn[1])
	}
	if nums[0] != nums[1] || nums[1] != nums[2] {
		t.Errorf("account safety numbers differ: %q", nums)
	}

	// The phone removes the laptop: Bob sees it, and his next message
	// reaches the phone only.
	phone.cmd("/remove 1")
	phone.expect("! /remove")
	phone.cmd("/remove 2")
	phone.expect(`removed device 2 "laptop": device list version 3`)
	bob.expectEver(`alice's account: device removed: 2 "laptop" (list version 3)`)
	bob.cmd("/msg alice only the phone now")
	phone.expectEver("<bob> only the phone now")
	time.Sleep(300 * time.Millisecond)
	laptop.mu.Lock()
	got := strings.Join(laptop.lines, "\n")
	laptop.mu.Unlock()
	if strings.Contains(got, "only the phone now") {
		t.Errorf("the removed laptop got Bob's message:\n%s", got)
	}
	phone.cmd("/devices")
	phone.expect("alice's devices (list version 3")
	// The laptop, started again, fetches its account's list and learns
	// it was removed; it can no longer send for the account.
	laptop.quit()
	laptop = startChat(t, hs.URL, "alice", filepath.Join(dir, "alice-laptop.db"), "-device", "2", "-name", "laptop")
	laptop.expectEver(`your account: device removed: 2 "laptop" (list version 3)`)
	laptop.expectEver("! this device was removed from your account")
	laptop.cmd("/msg bob still here?")
	laptop.expect("! this device was removed from your account: it cannot send for it")
	laptop.quit()
	phone.quit()
	bob.quit()
}
