package invitation

// codeWords are the 256 words of a short code's password, one byte each.
// The list is Assist's own: short, common, concrete English nouns, each
// easy to spell and to say over the phone, all lower-case ASCII. It is
// sorted, so wordIndex can binary-search it, and its order is part of the
// format: never reorder, add or remove words (a code made by one version
// must mean the same to another).
var codeWords = [256]string{
	"acorn", "actor", "agent", "alarm", "album", "alley", "amber", "angel",
	"ankle", "apple", "apron", "arena", "armor", "arrow", "atlas", "attic",
	"award", "bacon", "badge", "bagel", "baker", "bamboo", "banjo", "barn",
	"basin", "beach", "beard", "bench", "berry", "bike", "bird", "blade",
	"blank", "blaze", "bloom", "board", "boat", "bonus", "boot", "bowl",
	"brain", "brass", "bread", "brick", "bride", "brook", "broom", "brush",
	"bucket", "buddy", "cabin", "cable", "cactus", "camel", "candy", "canoe",
	"canvas", "cargo", "carpet", "castle", "cedar", "chain", "chair", "chalk",
	"cheese", "cherry", "chess", "chief", "chili", "circle", "clay", "cliff",
	"clock", "cloud", "clown", "coach", "cobra", "cocoa", "comet", "coral",
	"cotton", "couch", "crab", "crane", "crayon", "cream", "crown", "cube",
	"daisy", "dance", "delta", "desert", "diary", "dinner", "dog", "dolphin",
	"donkey", "dragon", "dream", "drum", "duck", "eagle", "earth", "echo",
	"elbow", "elk", "ember", "engine", "falcon", "farm", "feast", "fence",
	"fern", "ferry", "field", "finch", "flag", "flame", "flute", "fog",
	"forest", "fox", "frog", "fruit", "garden", "garlic", "ginger", "glove",
	"goat", "gold", "goose", "grape", "gravel", "guitar", "hammer", "harbor",
	"harp", "hawk", "hazel", "heart", "hedge", "helmet", "hero", "honey",
	"hook", "horse", "hotel", "igloo", "iron", "island", "ivory", "jacket",
	"jaguar", "jam", "jelly", "jewel", "judge", "juice", "kayak", "kettle",
	"kiwi", "koala", "ladder", "lake", "lamp", "lemon", "lily", "lion",
	"lizard", "llama", "lotus", "magnet", "mango", "maple", "marble", "meadow",
	"melon", "mint", "mirror", "moose", "motor", "mouse", "muffin", "mule",
	"napkin", "nest", "noodle", "nut", "oasis", "ocean", "olive", "onion",
	"orange", "orbit", "otter", "owl", "oyster", "paddle", "palace", "panda",
	"paper", "parrot", "peach", "pearl", "pencil", "pepper", "piano", "pickle",
	"pillow", "pine", "pirate", "pizza", "planet", "plum", "pocket", "pony",
	"potato", "puppy", "quail", "quilt", "rabbit", "radar", "radio", "raven",
	"ribbon", "river", "robot", "rocket", "rose", "ruby", "saddle", "salad",
	"salmon", "scarf", "shark", "shell", "silver", "sketch", "sled", "snail",
	"socks", "sofa", "spider", "spoon", "squid", "stone", "sugar", "summer",
	"sun", "swan", "table", "tiger", "toast", "tomato", "tulip", "turtle",
}
