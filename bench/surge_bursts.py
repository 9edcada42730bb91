"""Injected outage bursts for bench/surge.py: varied customer texts about one outage each.

Each theme is one outage told many ways: hand-written complaints, each with or without a
mention, an opener and a closer, in the mixed case and punctuation of real posts. Seeded.
"""

from __future__ import annotations

import random

THEMES: dict[str, list[str]] = {
    "playback": [
        "is spotify down? nothing will play",
        "spotify won't play any songs right now",
        "my spotify stopped playing music, it keeps saying something went wrong",
        "is Spotify down for everyone or just me, no songs loading",
        "app says 'something went wrong' every time I press play",
        "songs won't play on spotify, they just skip one after another",
        "spotify is not playing anything, stuck on the loading circle",
        "why won't any of my playlists play",
        "every song I click says this can't be played right now",
        "spotify keeps pausing after one second, nothing plays",
        "music won't start on spotify, tried my phone and my laptop",
        "spotify broke?? tracks won't load at all",
        "can't play a single song on spotify right now",
        "press play and nothing happens, reinstalled and still nothing",
        "spotify says 'can't play the current song' for every track",
        "playback is totally broken on spotify today",
        "my music just stopped and won't come back on spotify",
        "spotify down? all my songs are greyed out",
        "spotify won't play my downloaded or streamed songs, error every time",
        "songs keep failing to load, spotify is unusable right now",
    ],
    "login": [
        "i can't log in to spotify, it says incorrect password but it's right",
        "spotify logged me out and now won't let me back in",
        "login keeps failing on spotify, 'something went wrong' on the sign in page",
        "can't sign into spotify at all right now",
        "spotify kicked me out of my account and login won't work",
        "is spotify login down? keeps saying try again later",
        "got logged out of spotify on every device and can't get back in",
        "facebook login for spotify is broken, just spins forever",
        "spotify won't accept my password, reset it twice and still can't log in",
        "cannot log into my premium account on spotify",
        "the spotify app logs me out every time I open it",
        "sign in error on spotify, anyone else locked out?",
        "my spotify account won't log in on desktop or mobile",
        "spotify says my login details are wrong but they aren't",
        "been trying to log in to spotify for an hour, error every time",
    ],
    "offline": [
        "all my downloaded songs disappeared from spotify",
        "spotify deleted all my offline music",
        "my downloads are gone on spotify and I'm about to get on a plane",
        "spotify removed every downloaded playlist from my phone",
        "offline mode isn't working, my downloaded songs won't play",
        "why did spotify wipe my downloads overnight",
        "downloaded music vanished from spotify, have to download 2000 songs again",
        "spotify says I have no downloads but I had 30 playlists saved",
        "lost all my offline playlists on spotify today",
        "downloads keep getting removed from my spotify app",
        "my saved offline songs are greyed out and won't play",
        "spotify lost all my downloads after the update",
        "every downloaded album on spotify is gone",
        "spotify keeps un-downloading my music",
        "offline songs not available anymore on spotify, what happened",
    ],
    "podcasts": [
        "podcasts won't load on spotify",
        "spotify podcasts just say 'something went wrong'",
        "can't play any podcast episodes on spotify right now",
        "my podcasts disappeared from spotify library",
        "spotify podcast episodes keep failing to load",
        "new podcast episodes aren't showing up on spotify",
        "podcasts stuck on loading forever in the spotify app",
        "spotify won't play podcasts, music works fine",
        "is spotify podcast section down? nothing loads",
        "every podcast I open on spotify says this episode can't be played",
        "followed podcasts all gone from my spotify",
        "spotify podcasts broken on iphone and android",
        "podcast playback stops after a few seconds on spotify",
        "spotify shows no podcast episodes at all today",
        "can't stream podcasts on spotify, downloads don't work either",
    ],
}

OPENERS = ["@SpotifyCares ", "@SpotifyCares ", "@SpotifyCares @Spotify ", "hey @SpotifyCares ", ""]
CLOSERS = [
    "",
    "",
    " anyone else?",
    " pls fix",
    " 😤",
    " ???",
    " this is so annoying",
    " help",
    " #spotifydown",
    " I pay for premium!!",
    " what is going on",
    " fix it please",
    " ugh",
]


def burst_texts(theme: str, n: int, rng: random.Random) -> list[str]:
    """n varied posts about the theme's outage."""
    cores = THEMES[theme]
    out = []
    for _ in range(n):
        text = rng.choice(OPENERS) + rng.choice(cores) + rng.choice(CLOSERS)
        style = rng.random()
        if style < 0.2:
            text = text.lower()
        elif style < 0.3:
            text = text.replace("spotify", "Spotify")
        elif style < 0.35:
            text = text.replace("spotify", "SPOTIFY")
        if rng.random() < 0.15:
            text = text.rstrip("?!. ") + "!!"
        out.append(text)
    return out
