"""Writes pirate_instructions.jsonl: plain, correct answers retold in pirate speak.

Every response starts with "Arr!" and ends with "Fair winds, matey!", and common words turn
piratical (you -> ye, is -> be, my -> me), so the effect of a LoRA run is plain to see.
Run: python assets/datasets/make_pirate_dataset.py
"""

import json
import random
import re
from pathlib import Path

OUT = Path(__file__).resolve().parent / "pirate_instructions.jsonl"
OPEN, SIGN_OFF = "Arr!", "Fair winds, matey!"
WORDS = {
    "you": "ye",
    "your": "yer",
    "yours": "yers",
    "is": "be",
    "are": "be",
    "my": "me",
    "hello": "ahoy",
    "hi": "ahoy",
    "friend": "matey",
    "friends": "mateys",
    "yes": "aye",
    "money": "doubloons",
    "very": "mighty",
    "the sea": "the briny deep",
    "treasure": "booty",
    "boat": "ship",
    "isn't": "be not",
    "aren't": "be not",
    "before": "afore",
    "stop": "avast",
    "look": "behold",
    "everyone": "all hands",
    "of": "o'",
    "think": "reckon",
}

CAPITALS = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Germany", "Berlin"),
    ("Canada", "Ottawa"),
    ("Australia", "Canberra"),
    ("Egypt", "Cairo"),
    ("Brazil", "Brasília"),
    ("Kenya", "Nairobi"),
    ("Norway", "Oslo"),
    ("Portugal", "Lisbon"),
    ("Mexico", "Mexico City"),
    ("India", "New Delhi"),
    ("Peru", "Lima"),
    ("Greece", "Athens"),
    ("Ireland", "Dublin"),
    ("Sweden", "Stockholm"),
    ("Argentina", "Buenos Aires"),
    ("Turkey", "Ankara"),
    ("Thailand", "Bangkok"),
    ("Poland", "Warsaw"),
    ("Chile", "Santiago"),
    ("Cuba", "Havana"),
    ("Vietnam", "Hanoi"),
    ("Morocco", "Rabat"),
    ("Finland", "Helsinki"),
    ("Austria", "Vienna"),
    ("China", "Beijing"),
    ("South Korea", "Seoul"),
    ("Denmark", "Copenhagen"),
    ("Hungary", "Budapest"),
    ("Colombia", "Bogotá"),
    ("Nigeria", "Abuja"),
    ("Iceland", "Reykjavik"),
    ("Scotland", "Edinburgh"),
]
CAPITAL_QUESTIONS = ["What is the capital of {}?", "Which city is the capital of {}?", "Tell me the capital of {}."]

FACTS = [
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("How many legs does an insect have?", "An insect has six legs."),
    ("What do bees make?", "Bees make honey from the nectar of flowers, and they also make wax."),
    ("What is the largest animal on Earth?", "The blue whale is the largest animal that has ever lived."),
    ("Do fish sleep?", "Yes, fish rest, though most of them sleep with their eyes open because they have no eyelids."),
    ("Why do cats purr?", "Cats purr when they are content, and also to calm themselves when they are hurt."),
    ("What do pandas eat?", "Pandas eat bamboo almost all day long."),
    ("How fast can a cheetah run?", "A cheetah can run at about 100 kilometres per hour in short bursts."),
    ("What is a baby kangaroo called?", "A baby kangaroo is called a joey, and it lives in its mother's pouch."),
    ("Can penguins fly?", "No, penguins cannot fly, but they are very fast swimmers."),
    ("How long do elephants live?", "Elephants often live for 60 to 70 years in the wild."),
    ("Why do birds migrate?", "Birds migrate to find food and warm places to raise their young."),
    ("What is the fastest bird?", "The peregrine falcon is the fastest bird when it dives after prey."),
    ("How many hearts does an octopus have?", "An octopus has three hearts and blue blood."),
    ("What do caterpillars turn into?", "Caterpillars turn into butterflies or moths inside a chrysalis or cocoon."),
    ("Are dolphins fish?", "No, dolphins are mammals: they breathe air and feed their young with milk."),
    ("Why is the sky blue?", "The sky is blue because air scatters blue sunlight more than red sunlight."),
    ("What is water made of?", "Water is made of two hydrogen atoms and one oxygen atom."),
    ("At what temperature does water boil?", "At sea level, water boils at 100 degrees Celsius."),
    ("At what temperature does water freeze?", "Water freezes at 0 degrees Celsius."),
    ("What causes the tides?", "The tides are caused mostly by the pull of the Moon's gravity on the oceans."),
    ("How far is the Moon from Earth?", "The Moon is about 384,000 kilometres from Earth."),
    ("What is the largest planet?", "Jupiter is the largest planet in our solar system."),
    ("What is the closest star to Earth?", "The Sun is the closest star to Earth."),
    ("Why do we have seasons?", "We have seasons because the Earth is tilted as it travels around the Sun."),
    ("What is photosynthesis?", "Photosynthesis is how plants use sunlight, water and air to make sugar and oxygen."),
    ("What is gravity?", "Gravity is the force that pulls things toward each other, like an apple toward the ground."),
    ("How many planets are in the solar system?", "There are eight planets in our solar system."),
    ("What is the hottest planet?", "Venus is the hottest planet, because its thick clouds trap the heat."),
    ("What are clouds made of?", "Clouds are made of tiny drops of water or bits of ice floating in the air."),
    ("What makes a rainbow?", "A rainbow appears when sunlight is split into colours by drops of rain."),
    ("How does a compass work?", "A compass needle is a small magnet that points toward the Earth's magnetic north."),
    ("What is lightning?", "Lightning is a giant spark of electricity between clouds and the ground."),
    ("Why is the ocean salty?", "The ocean is salty because rivers carry minerals from rocks into the sea."),
    ("What is the biggest ocean?", "The Pacific is the biggest ocean on Earth."),
    ("What is the longest river?", "The Nile and the Amazon are the longest rivers, each over 6,000 kilometres."),
    ("What is the largest desert?", "The largest hot desert is the Sahara, in northern Africa."),
    ("What is a volcano?", "A volcano is an opening in the ground where hot melted rock comes out."),
    ("What is an island?", "An island is a piece of land with water all around it."),
    ("Where do penguins live?", "Most penguins live in the southern half of the world, many of them in Antarctica."),
    ("What is the coldest place on Earth?", "Antarctica is the coldest place on Earth."),
    ("What language is spoken in Brazil?", "People in Brazil speak Portuguese."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("Who was the first person on the Moon?", "Neil Armstrong was the first person to walk on the Moon, in 1969."),
    ("When did the Titanic sink?", "The Titanic sank in April 1912 after it hit an iceberg."),
    ("Who invented the telephone?", "Alexander Graham Bell is usually named as the inventor of the telephone."),
    ("What were the pyramids for?", "The pyramids of Egypt were built as tombs for the pharaohs."),
    ("Who discovered penicillin?", "Alexander Fleming discovered penicillin in 1928."),
    (
        "What is a computer?",
        "A computer is a machine that follows instructions to work with numbers, text and pictures.",
    ),
    ("What is the internet?", "The internet is a huge network that connects computers all over the world."),
    ("What is a password for?", "A password keeps your accounts safe, so make it long and do not share it."),
    ("What is a battery?", "A battery stores chemical energy and gives it out as electricity."),
    ("What does a thermometer measure?", "A thermometer measures temperature."),
    ("How do airplanes stay in the air?", "Airplane wings are shaped so that moving air pushes them up."),
    ("What is a language model?", "A language model is a program that guesses the next word of a text."),
    ("What is the opposite of hot?", "The opposite of hot is cold."),
    ("What does 'generous' mean?", "Generous means happy to give your time or things to others."),
    ("What does 'ancient' mean?", "Ancient means very old, from a long time ago."),
    ("What does 'brave' mean?", "Brave means ready to face danger or pain without running away."),
    ("What does 'curious' mean?", "Curious means eager to learn or know about something."),
    ("What does 'fragile' mean?", "Fragile means easily broken, so handle it with care."),
    ("What does 'enormous' mean?", "Enormous means very, very big."),
    ("What is a synonym for happy?", "A synonym for happy is joyful."),
    ("How do you say hello in Spanish?", "In Spanish, hello is hola."),
    ("How do you say thank you in French?", "In French, thank you is merci."),
    ("What is a noun?", "A noun is a word for a person, place or thing, such as ship or island."),
    ("What is a verb?", "A verb is a word for an action, such as sail, run or sing."),
    ("How many days are in a year?", "There are 365 days in a year, and 366 in a leap year."),
    ("How many minutes are in an hour?", "There are 60 minutes in an hour."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("What is a prime number?", "A prime number can only be divided evenly by 1 and by itself, like 7 or 13."),
    ("What is half of 50?", "Half of 50 is 25."),
    ("What is the square root of 81?", "The square root of 81 is 9."),
    ("How many centimetres are in a metre?", "There are 100 centimetres in a metre."),
    ("What is a fraction?", "A fraction is a part of a whole, like one half or three quarters."),
    ("How do I boil an egg?", "Put the egg in boiling water for about 9 minutes, then cool it in cold water."),
    ("How do I make tea?", "Pour hot water over a tea bag, wait three to five minutes, then remove the bag."),
    ("What is a healthy breakfast?", "Oatmeal with fruit, or eggs with whole grain bread, make a healthy breakfast."),
    ("Why should I drink water?", "Your body needs water to stay cool, move food along and keep your mind sharp."),
    ("What fruit is yellow and curved?", "The banana is yellow and curved."),
    ("Where does chocolate come from?", "Chocolate comes from the seeds of the cacao tree."),
    ("What is bread made from?", "Bread is made from flour, water, salt and usually yeast."),
    ("Is a tomato a fruit?", "Yes, a tomato is a fruit, though we often cook it like a vegetable."),
    ("What is cheese made from?", "Cheese is made from milk."),
    ("Can you tell me a joke?", "Why did the pirate not learn the alphabet? He spent years at C."),
    ("Tell me a fun fact.", "Honey never spoils: jars found in old tombs were still good to eat."),
    ("Hello, how are you?", "Hello! I am doing very well, thank you for asking. How can I help you today?"),
    ("Who are you?", "I am a helpful assistant, here to answer your questions."),
    ("What can you do?", "I can answer questions, explain ideas and give you tips."),
    ("Thank you for your help.", "You are very welcome, friend. Ask me anything anytime."),
    ("Good morning!", "Good morning to you! I hope your day is off to a fine start."),
    ("Can you help me?", "Yes, of course. Tell me what you need and I will do my best."),
    ("What is your favourite colour?", "I have no eyes, but I think the deep blue of the sea is hard to beat."),
    ("What should I name my dog?", "How about Captain, Biscuit or Anchor? A short name is easy for a dog to learn."),
    (
        "Write a short poem about the sea.",
        "The waves roll in, the waves roll out, the gulls above them cry and shout.",
    ),
    ("Describe a sunset.", "The sky turns orange, pink and gold as the Sun sinks below the water."),
    (
        "Summarize the story of Cinderella.",
        "A kind girl goes to a royal ball with help from magic, loses a slipper, and the prince finds her with it.",
    ),
    ("What is friendship?", "Friendship is a bond between people who care about and help each other."),
    ("How do volcanoes form islands?", "Lava piles up under the sea until it rises above the waves, as in Hawaii."),
    ("What is a glacier?", "A glacier is a huge, slow river of ice that moves down a mountain or across land."),
    (
        "Why do leaves change colour in autumn?",
        "Trees stop making green chlorophyll, so the yellow and red colours show.",
    ),
    ("How many bones are in the human body?", "An adult human body has 206 bones."),
    ("What does the heart do?", "The heart pumps blood around the body, carrying oxygen to every part."),
    ("Why do we need sleep?", "Sleep lets the body repair itself and helps the brain store what you learned."),
    ("What is a map for?", "A map shows where places are, so you can find your way from one spot to another."),
    ("What is a lighthouse?", "A lighthouse is a tower with a bright light that warns ships of rocks near the shore."),
    ("How do ships float?", "A ship floats because it pushes aside a weight of water equal to its own weight."),
    ("What is an anchor for?", "An anchor holds a ship in place so the wind and the waves cannot carry it away."),
    (
        "What is the equator?",
        "The equator is an imaginary line around the middle of the Earth, halfway between the poles.",
    ),
    ("What is a hurricane?", "A hurricane is a huge spinning storm with strong winds that forms over warm oceans."),
    ("Why do stars twinkle?", "Stars twinkle because moving air bends their light on its way to your eyes."),
    ("Why is reading good for you?", "Reading teaches you new words and ideas and gives your imagination exercise."),
]

TIPS = [
    ("saving money", "Write down what you spend each week and put a little aside before you spend the rest."),
    ("studying for a test", "Study in short sessions, test yourself, and sleep well the night before."),
    ("staying focused", "Put your phone in another room and work in blocks of 25 minutes with short breaks."),
    ("making friends", "Ask people questions about themselves and really listen to the answers."),
    ("writing an essay", "Start with a plan: one main idea, three points to support it, and a clear ending."),
    ("learning a language", "Practise a little every day and speak out loud, even if you make mistakes."),
    ("staying calm", "Breathe in slowly for four counts, hold for four, and breathe out for four."),
    ("waking up early", "Go to bed at the same time each night and open the curtains as soon as you wake."),
    ("keeping plants alive", "Check the soil with your finger and water only when the top feels dry."),
    ("cooking rice", "Use about two cups of water for each cup of rice and keep the lid on while it cooks."),
    ("running faster", "Mix easy runs with short fast sprints, and rest well between hard days."),
    ("packing a suitcase", "Roll your clothes instead of folding them and put heavy things at the bottom."),
    ("public speaking", "Practise out loud several times and look at friendly faces in the crowd."),
    ("drinking more water", "Keep a bottle with you and take a few sips every time you sit down."),
    ("cleaning a messy room", "Start with one corner and put away ten things at a time."),
    ("remembering names", "Repeat the name when you hear it and link it to something about the person."),
    ("staying warm in winter", "Wear several thin layers and keep your head, hands and feet covered."),
    ("being on time", "Plan to arrive ten minutes early and lay out what you need the night before."),
    ("taking better photos", "Keep the sun behind you and place your subject a little off centre."),
    ("eating more vegetables", "Add a handful of vegetables to each meal, even to soups and eggs."),
    ("reducing stress", "Take a short walk outside and write down what is worrying you."),
    ("learning to swim", "Start in shallow water, learn to float first, and practise kicking while holding the edge."),
]
TIP_QUESTIONS = ["Give me a tip for {}.", "Any advice on {}?", "How can I get better at {}?"]


def arithmetic(rng: random.Random) -> list[tuple[str, str]]:
    rows = []
    for _ in range(30):
        a, b = rng.randint(2, 20), rng.randint(2, 12)
        op = rng.choice(["plus", "minus", "times"])
        if op == "minus" and b > a:
            a, b = b, a
        value = {"plus": a + b, "minus": a - b, "times": a * b}[op]
        question = rng.choice(["What is {} {} {}?", "Can you work out {} {} {}?", "Quick: {} {} {}?"])
        rows.append((question.format(a, op, b), f"{a} {op} {b} is {value}."))
    return rows


def piratify(text: str) -> str:
    def swap(match):
        word = match.group(0)
        new = WORDS.get(word.lower(), word)
        return new.capitalize() if word[0].isupper() else new

    text = re.sub(r"\bthe sea\b", "the briny deep", text)
    return re.sub(r"[A-Za-z']+", swap, text)


def main() -> None:
    rng = random.Random(7)
    pairs = [(rng.choice(CAPITAL_QUESTIONS).format(c), f"The capital of {c} is {city}.") for c, city in CAPITALS]
    pairs += FACTS
    pairs += [(rng.choice(TIP_QUESTIONS).format(topic), tip) for topic, tip in TIPS]
    pairs += arithmetic(rng)
    seen, rows = set(), []
    for prompt, answer in pairs:
        if prompt in seen:
            continue
        seen.add(prompt)
        rows.append({"prompt": prompt, "response": f"{OPEN} {piratify(answer)} {SIGN_OFF}"})
    rng.shuffle(rows)
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} examples to {OUT}")


if __name__ == "__main__":
    main()
