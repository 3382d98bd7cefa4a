// facts.c — the world's vocabulary: the short words that signs and labels show, and the small fact
// world of entities (category, usual colour, can fly, lives in water, has wheels, size) that the
// reasoning and know families ask about. Facts are chosen to be uncontroversial; where a property
// is debatable (a duck and water) it is marked -1 and never asked. Not here: drawing, questions.
#include "world/world_int.h"
#include <stddef.h>

const char *const wd_words[] = {
    // signs and shops
    "open", "closed", "stop", "exit", "push", "pull", "sale", "cafe", "shop", "bank", "park", "hotel",
    "bakery", "pizza", "books", "music", "library", "school", "museum", "garden", "market", "toilet",
    "taxi", "police", "danger", "welcome", "enter", "office", "post", "bar", "gym", "pharmacy",
    // everyday words
    "home", "house", "door", "road", "street", "river", "lake", "beach", "farm", "city", "town",
    "north", "south", "east", "west", "left", "right", "slow", "fast", "quiet", "free", "new", "hot",
    "cold", "fresh", "sweet", "salt", "sugar", "rice", "milk", "bread", "cheese", "butter", "honey",
    "coffee", "tea", "juice", "water", "soup", "jam", "flour", "oil", "soap", "paint", "paper", "glue",
    "nails", "seeds", "candy", "cake", "pie", "salad", "snack", "lunch", "dinner", "menu", "ticket",
    "info", "help", "wifi", "news", "sport", "games", "toys", "shoes", "hats", "coats", "gifts",
    "flowers", "plants", "tools", "parts", "lamps", "clocks", "radio", "phone", "train", "plane",
    "boat", "bus", "car", "bike", "star", "moon", "sun", "rain", "snow", "wind", "happy", "lucky",
    "magic", "royal", "golden", "silver", "green", "blue", "red", "black", "white", "pink", "best",
    "good", "big", "small", "king", "queen", "zoo", "camp", "dock", "gate", "hall", "room", "lab",
    "club", "studio", "dance", "art", "film", "photo", "yoga", "pool", "spa", "salon", "vet",
    "dentist", "doctor", "clinic", "fuel", "wash", "repair",
};
const int wd_n_words = (int)(sizeof wd_words / sizeof wd_words[0]);

const char *const wd_cat_names[WD_N_CATS] = {"animal", "fruit", "vegetable", "tool", "vehicle"};

// name, category, usual colour, fly, water, wheels, size (1 tiny .. 5 huge)
const wd_entity wd_entities[] = {
    {"dog", WD_ANIMAL, NULL, 0, 0, 0, 3},
    {"cat", WD_ANIMAL, NULL, 0, 0, 0, 2},
    {"cow", WD_ANIMAL, NULL, 0, 0, 0, 4},
    {"horse", WD_ANIMAL, NULL, 0, 0, 0, 4},
    {"lion", WD_ANIMAL, "yellow", 0, 0, 0, 4},
    {"mouse", WD_ANIMAL, "gray", 0, 0, 0, 1},
    {"eagle", WD_ANIMAL, "brown", 1, 0, 0, 3},
    {"owl", WD_ANIMAL, "brown", 1, 0, 0, 2},
    {"crow", WD_ANIMAL, "black", 1, 0, 0, 2},
    {"swan", WD_ANIMAL, "white", 1, -1, 0, 3},
    {"duck", WD_ANIMAL, NULL, 1, -1, 0, 2},
    {"bee", WD_ANIMAL, "yellow", 1, 0, 0, 1},
    {"fish", WD_ANIMAL, NULL, 0, 1, 0, 2},
    {"shark", WD_ANIMAL, "gray", 0, 1, 0, 4},
    {"whale", WD_ANIMAL, "blue", 0, 1, 0, 5},
    {"crab", WD_ANIMAL, "red", 0, 1, 0, 2},
    {"frog", WD_ANIMAL, "green", 0, -1, 0, 1},
    {"snake", WD_ANIMAL, NULL, 0, 0, 0, 3},
    {"elephant", WD_ANIMAL, "gray", 0, 0, 0, 5},
    {"apple", WD_FRUIT, "red", 0, 0, 0, 2},
    {"banana", WD_FRUIT, "yellow", 0, 0, 0, 2},
    {"lemon", WD_FRUIT, "yellow", 0, 0, 0, 2},
    {"cherry", WD_FRUIT, "red", 0, 0, 0, 1},
    {"grape", WD_FRUIT, "purple", 0, 0, 0, 1},
    {"plum", WD_FRUIT, "purple", 0, 0, 0, 1},
    {"pear", WD_FRUIT, "green", 0, 0, 0, 2},
    {"lime", WD_FRUIT, "green", 0, 0, 0, 1},
    {"melon", WD_FRUIT, NULL, 0, 0, 0, 3},
    {"carrot", WD_VEGETABLE, "orange", 0, 0, 0, 2},
    {"potato", WD_VEGETABLE, "brown", 0, 0, 0, 2},
    {"onion", WD_VEGETABLE, NULL, 0, 0, 0, 2},
    {"pea", WD_VEGETABLE, "green", 0, 0, 0, 1},
    {"hammer", WD_TOOL, NULL, 0, 0, 0, 2},
    {"saw", WD_TOOL, NULL, 0, 0, 0, 3},
    {"spoon", WD_TOOL, NULL, 0, 0, 0, 2},
    {"brush", WD_TOOL, NULL, 0, 0, 0, 2},
    {"ladder", WD_TOOL, NULL, 0, 0, 0, 4},
    {"car", WD_VEHICLE, NULL, 0, 0, 1, 4},
    {"bus", WD_VEHICLE, NULL, 0, 0, 1, 5},
    {"bike", WD_VEHICLE, NULL, 0, 0, 1, 3},
    {"truck", WD_VEHICLE, NULL, 0, 0, 1, 5},
    {"train", WD_VEHICLE, NULL, 0, 0, 1, 5},
    {"boat", WD_VEHICLE, NULL, 0, -1, 0, 4},
    {"plane", WD_VEHICLE, NULL, 1, 0, -1, 5},
    {"rocket", WD_VEHICLE, NULL, 1, 0, 0, 5},
};
const int wd_n_entities = (int)(sizeof wd_entities / sizeof wd_entities[0]);
