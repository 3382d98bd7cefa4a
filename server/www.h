// www.h — the demo page's static files and the sample images (see www.c).
#ifndef T2_SERVER_WWW_H
#define T2_SERVER_WWW_H
#include <stddef.h>

// Contract: 1 if the page files are compiled into the program.
int t2_www_embedded(void);
// Contract: a malloc'd real path of REL found next to the program (its directory or up to three
// levels above), or NULL.
char *t2_www_find_near_exe(const char *rel);
// Contract: page file NAME (no '/') from DIR, or from the built-in copy when DIR is NULL. *DATA(*SIZE);
// *OWNED is what to free afterwards (NULL for built-in data). -1 + error if there is no such file.
int t2_www_get(const char *dir, const char *name, const void **data, size_t *size, void **owned);
// Contract: Content-Type for a file name.
const char *t2_www_mime(const char *name);
// Contract: 1 for a plain file name (no '/', no leading '.') ending .png / .jpg / .jpeg.
int t2_www_is_image_name(const char *name);
// Contract: the image names in DIR, sorted (malloc'd array of malloc'd strings); the count.
int t2_www_list_images(const char *dir, char ***names);

#endif
